import { ErrorCode, DEFAULTS, LacewingError, field, loadConfig, securityConfigFields, type ConfigOf, type ConfigSources } from "@lacewing/common";

export const dfdaemonSchema = {
  scheduler: field.list({
    description:
      "Scheduler addresses HOST:PORT; a name with several A records counts as several schedulers; empty means every task goes straight to the origin",
    default: [],
    placeholder: "<host:port,...>",
    env: "DFDAEMON_SCHEDULER",
  }),
  dataDir: field.string({
    description: "Where pieces and task metadata live",
    default: DEFAULTS.dfdaemon.dataDir,
    env: "DFDAEMON_DATA_DIR",
    placeholder: "<dir>",
  }),
  advertiseIp: field.string({ description: "IP other peers use to reach this node", default: "127.0.0.1", env: "DFDAEMON_ADVERTISE_IP", placeholder: "<ip>" }),
  seed: field.boolean({ description: "Run as a seed peer", default: false, env: "DFDAEMON_SEED" }),
  uploadPort: field.port({ description: "TCP port serving pieces to peers (the piece protocol)", default: DEFAULTS.dfdaemon.uploadPort }),
  proxyPort: field.port({ description: "Registry mirror port for containerd", default: DEFAULTS.dfdaemon.proxyPort }),
  peerPort: field.port({ description: "gRPC port for peers and the scheduler", default: DEFAULTS.dfdaemon.peerPort }),
  metricsPort: field.port({ description: "Port of /metrics, /healthz and /readyz; 0 picks a free one", default: DEFAULTS.dfdaemon.metricsPort }),
  listenIp: field.string({ description: "Address the peer, upload and metrics ports bind to", default: "0.0.0.0", placeholder: "<ip>" }),
  proxyListenIp: field.string({
    description: "Address the registry mirror binds to: loopback, where the node's containerd reaches it and nobody else does",
    default: "127.0.0.1",
    placeholder: "<ip>",
  }),
  uploadTls: field.boolean({
    description: "Serve piece bytes over TLS with client certificates (encrypted; costs CPU) instead of plain TCP with a per-task grant",
    default: false,
  }),
  allowLoopbackOrigins: field.boolean({
    description: "Fetch from loopback origins (127.0.0.1, localhost): a different server on every node, so only for one-machine setups",
    default: false,
  }),
  announceInterval: field.duration({ description: "How often the host announces itself to each scheduler", default: 10_000 }),
  disableBackToSource: field.boolean({ description: "Never fetch from the origin; fail when peers cannot serve", default: false }),
  uploadLimit: field.number({
    description: "Pieces served to other peers at once",
    default: 32,
    check: (v) => (v >= 1 ? undefined : "must be at least 1"),
  }),
  superSeedWindow: field.duration({
    description:
      "Seed peers send each piece once, then refuse it for this long (or 4 times that first send's duration, if longer) while children trade it; 0 turns super-seeding off",
    default: 3_000,
  }),
  uploadRateLimit: field.bytes({ description: "Upload bytes per second to other peers, e.g. 100MiB; 0 is unlimited", default: 0 }),
  peerConcurrency: field.number({
    description: "Pieces fetched from parents at once",
    default: 16,
    check: (v) => (v >= 1 && v <= 256 ? undefined : "must be between 1 and 256"),
  }),
  parentPipeline: field.number({
    description: "Piece requests pipelined to one parent: enough to keep its link busy, few enough that every child gets a share",
    default: 4,
    check: (v) => (Number.isInteger(v) && v >= 1 && v <= 16 ? undefined : "must be a whole number from 1 to 16"),
  }),
  pieceMemory: field.bytes({
    description: "Most memory pieces being received may take, over every download (from peers and from the origin)",
    default: 64 * 1024 * 1024,
    check: (v) => (v >= 4 * 1024 * 1024 ? undefined : "must be at least 4MiB"),
  }),
  parentStallTimeout: field.duration({
    description:
      "A parent that sends nothing for this long while a piece is asked of it is taken for dead or cut off: its pieces go to other parents (progress, not a whole-piece deadline, so a slow link is not mistaken for a dead one)",
    default: 2_000,
    check: (v) => (v >= 100 ? undefined : "must be at least 100ms"),
  }),
  pieceTimeout: field.duration({
    description:
      "Longest a piece connection may stay silent: a child that stops reading gives its upload slot back after this; with nothing to fetch for twice this, a download stops waiting for its parents",
    default: 30_000,
  }),
  maxReschedules: field.number({ description: "New parent sets asked for before going back to source", default: 3 }),
  proxyDefaultRegistry: field.string({
    description: "Registry a mirror request without containerd's ns parameter goes to (e.g. from a Docker daemon's registry-mirrors)",
    default: "docker.io",
    placeholder: "<host>",
  }),
  proxyRegistries: field.list({
    description: "Registries the mirror serves (containerd's ns), e.g. docker.io,ghcr.io; empty refuses every request",
    default: [],
    placeholder: "<host,...>",
  }),
  proxyPlainHttpRegistries: field.list({
    description: "Registries the mirror reaches over plain HTTP instead of HTTPS",
    default: [],
    placeholder: "<host,...>",
  }),
  proxyStallTimeout: field.duration({
    description: "A blob that gets no new piece for this long is served from the registry instead",
    default: 30_000,
  }),
  socket: field.string({
    description: "Unix socket of the local API used by dfget",
    default: DEFAULTS.dfdaemon.socket,
    env: "DFDAEMON_SOCKET",
    placeholder: "<path>",
  }),
  idc: field.string({ description: "Data centre name, for scheduling affinity", default: "", placeholder: "<name>" }),
  location: field.string({ description: "Location a|b|c, for scheduling affinity", default: "", placeholder: "<a|b|c>" }),
  originConcurrency: field.number({
    description: "Pieces fetched from the origin at once",
    default: 8,
    check: (v) => (v >= 1 && v <= 64 ? undefined : "must be between 1 and 64"),
  }),
  pieceAttempts: field.number({
    description: "Tries per piece before the download fails",
    default: 5,
    check: (v) => (v >= 1 ? undefined : "must be at least 1"),
  }),
  keepStorage: field.boolean({
    description: "Keep the cache across restarts (tasks and verified pieces are reloaded); false empties it at start and at shutdown",
    default: true,
    env: "DFDAEMON_KEEP_STORAGE",
  }),
  gcInterval: field.duration({
    description: "How often the cache collector runs",
    default: 60_000,
    check: (v) => (v >= 100 ? undefined : "must be at least 100ms"),
  }),
  // An age compared with access times, never a timer: a month-long TTL is fine.
  taskTtl: field.duration({ description: "A task not read or downloaded for this long is evicted", default: 6 * 3_600_000, max: Number.POSITIVE_INFINITY }),
  diskQuota: field.bytes({ description: "Most bytes the cache may hold; 0 means no quota (the watermarks then apply to the filesystem)", default: 0 }),
  highWatermark: field.number({
    description: "Percent of diskQuota (or, with no quota, of the data directory's filesystem) above which least recently used tasks are evicted",
    default: 90,
    check: percent,
  }),
  lowWatermark: field.number({ description: "Percent the collector evicts down to once above the high watermark", default: 80, check: percent }),
  outputTempTtl: field.duration({
    description: "A temporary file beside an output older than this is a crashed run's leftover, removed when that output is placed again",
    default: 10 * 60_000,
  }),
  logLevel: field.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
    description: "Log level",
    default: "info",
    env: "DFDAEMON_LOG_LEVEL",
  }),
  ...securityConfigFields("DFDAEMON"),
};

export type DfdaemonConfig = ConfigOf<typeof dfdaemonSchema>;

export function loadDfdaemonConfig(sources: ConfigSources): DfdaemonConfig {
  const config = loadConfig(dfdaemonSchema, sources);
  if (config.lowWatermark >= config.highWatermark)
    throw new LacewingError(ErrorCode.config, "invalid_argument", `invalid config: lowWatermark must be below highWatermark (${config.highWatermark})`, {
      details: { key: "lowWatermark" },
    });
  return config;
}

function percent(value: number): string | undefined {
  return value > 0 && value <= 100 ? undefined : "must be a percentage above 0 and at most 100";
}
