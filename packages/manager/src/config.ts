import { ErrorCode, DEFAULTS, LacewingError, field, loadConfig, securityConfigFields, type ConfigOf, type ConfigSources } from "@lacewing/common";
import { parseAuthority } from "./rest/request-guards.js";

/** Every setting of lacewing-manager: defaults < YAML (--config) < environment < flags. */
export const managerConfigSchema = {
  listen: field.string({
    description: "REST API address HOST:PORT",
    default: `127.0.0.1:${DEFAULTS.manager.port}`,
    env: "LACEWING_MANAGER_LISTEN",
    placeholder: "<host:port>",
  }),
  grpcListen: field.string({
    description: "GRPC API address HOST:PORT",
    default: `127.0.0.1:${DEFAULTS.manager.grpcPort}`,
    env: "LACEWING_MANAGER_GRPC_LISTEN",
    placeholder: "<host:port>",
  }),
  databaseUrl: field.string({
    description: "Postgres URL; empty for the embedded Postgres (PGlite)",
    default: "",
    env: "LACEWING_MANAGER_DATABASE_URL",
    placeholder: "<url>",
  }),
  databaseSchema: field.string({
    description: "Postgres schema holding the manager's tables",
    default: "public",
    env: "LACEWING_MANAGER_DATABASE_SCHEMA",
    placeholder: "<name>",
  }),
  dataDir: field.string({
    description: "Directory of the embedded Postgres; empty keeps it in memory",
    default: "",
    env: "LACEWING_MANAGER_DATA_DIR",
    placeholder: "<dir>",
  }),
  redisUrl: field.string({
    description: "Redis URL for the BullMQ job queue; empty runs jobs in-process",
    default: "",
    env: "LACEWING_MANAGER_REDIS_URL",
    placeholder: "<url>",
  }),
  queuePrefix: field.string({ description: "BullMQ key prefix", default: "lacewing", env: "LACEWING_MANAGER_QUEUE_PREFIX", placeholder: "<prefix>" }),
  scheduler: field.list({ description: "Scheduler addresses HOST:PORT,…", default: [], env: "LACEWING_MANAGER_SCHEDULER", placeholder: "<host:port,...>" }),
  token: field.string({ description: "Bearer token every API call must carry", default: "", env: "LACEWING_MANAGER_TOKEN", placeholder: "<token>" }),
  allowedHosts: field.list({
    description: "Without a token: Host names the REST API answers to besides the listen address, localhost, 127.0.0.1 and [::1] (NAME or NAME:PORT)",
    default: [],
    env: "LACEWING_MANAGER_ALLOWED_HOSTS",
    placeholder: "<host,...>",
    check: (hosts) => {
      const bad = hosts.find((host) => parseAuthority(host) === undefined);
      return bad === undefined ? undefined : `entry ${JSON.stringify(bad)} is not NAME or NAME:PORT`;
    },
  }),
  jobConcurrency: field.number({ description: "Jobs run at once by this process", default: 4, check: positiveInteger }),
  taskConcurrency: field.number({ description: "Tasks (layers) of one job triggered at once", default: 4, check: positiveInteger }),
  // Bounded like every duration: grpc-js silently drops a deadline beyond the timer limit, so a longer one would mean none.
  triggerTimeout: field.duration({ description: "How long one task trigger may take", default: 30 * 60_000 }),
  logLevel: field.enum(["trace", "debug", "info", "warn", "error", "silent"], { description: "Log level", default: "info", env: "LACEWING_MANAGER_LOG_LEVEL" }),
  ...securityConfigFields("LACEWING_MANAGER"),
};

export type ManagerConfig = ConfigOf<typeof managerConfigSchema>;

function positiveInteger(value: number): string | undefined {
  return Number.isInteger(value) && value > 0 ? undefined : "must be a positive integer";
}

/** Loads and checks the config; an unsafe combination fails naming the key. */
export function loadManagerConfig(sources: ConfigSources = {}): ManagerConfig {
  const config = loadConfig(managerConfigSchema, sources);
  checkManagerConfig(config);
  return config;
}

/** Without a token the API is open, so it may only listen where nobody else can reach it. */
export function checkManagerConfig(config: ManagerConfig): void {
  if (config.token !== "") return;
  for (const key of ["listen", "grpcListen"] as const) {
    if (!isLoopback(config[key]))
      throw new LacewingError(
        ErrorCode.config,
        "invalid_argument",
        `invalid config: token is required when ${key} (${config[key]}) is not a loopback address`,
        {
          details: { key: "token" },
        },
      );
  }
}

function isLoopback(address: string): boolean {
  const host = splitHostPort(address).host;
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** Splits "host:port" / "[v6]:port". */
export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (match === null) throw new LacewingError(ErrorCode.config, "invalid_argument", `invalid address ${JSON.stringify(address)}: expected HOST:PORT`);
  return { host: match[1] ?? "", port: Number(match[2]) };
}
