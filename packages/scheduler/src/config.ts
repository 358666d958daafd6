import { DEFAULTS, field, loadConfig, securityConfigFields, type ConfigOf, type ConfigSources } from "@lacewing/common";

const positiveInteger = (value: number): string | undefined => (Number.isInteger(value) && value >= 1 ? undefined : "must be a whole number of at least 1");

/** The scheduler's one config schema: defaults < YAML (--config) < environment < flags. */
export const schedulerConfigSchema = {
  listen: field.string({
    description: "gRPC address to listen on, HOST:PORT",
    default: `0.0.0.0:${DEFAULTS.scheduler.port}`,
    env: "LACEWING_SCHEDULER_LISTEN",
    placeholder: "<host:port>",
    check: (value) =>
      /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(value) && Number(value.slice(value.lastIndexOf(":") + 1)) <= 65535
        ? undefined
        : `must be HOST:PORT, got ${JSON.stringify(value)}`,
  }),
  candidateParentLimit: field.number({
    description: "Parents returned to a child at once",
    default: 4,
    env: "LACEWING_SCHEDULER_CANDIDATE_PARENT_LIMIT",
    check: positiveInteger,
  }),
  maxReschedules: field.number({
    description: "Reschedules answered with parents before a peer is sent back to source",
    default: 5,
    env: "LACEWING_SCHEDULER_MAX_RESCHEDULES",
    check: (value) => (Number.isInteger(value) && value >= 0 ? undefined : "must be a whole number"),
  }),
  scheduleTimeout: field.duration({
    description: "How long a child waits for a parent before going back to source",
    default: 10_000,
    env: "LACEWING_SCHEDULER_SCHEDULE_TIMEOUT",
  }),
  crossZoneOnce: field.boolean({
    description:
      "Under affinity, keep pieces inside zones (idc): a zone with a seed peer of its own is served by it from inside, and a zone without one lets only its first peers of a task take parents elsewhere, so each piece crosses about once; far fewer cross-zone bytes, at a time cost the rollout simulator puts at several times F/U for hundreds of nodes (docs/BENCHMARKS.md)",
    default: false,
    env: "LACEWING_SCHEDULER_CROSS_ZONE_ONCE",
  }),
  topology: field.enum(["isolation", "affinity"] as const, {
    description: "isolation: never cross idc; affinity: prefer the same idc and location",
    default: "affinity",
    env: "LACEWING_SCHEDULER_TOPOLOGY",
  }),
  gcInterval: field.duration({
    description: "How often hosts that stopped announcing are dropped",
    default: 5_000,
    env: "LACEWING_SCHEDULER_GC_INTERVAL",
    check: (value) => (value > 0 ? undefined : "must be more than zero"),
  }),
  logLevel: field.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, {
    description: "Log level",
    default: "info",
    env: "LACEWING_SCHEDULER_LOG_LEVEL",
  }),
  metricsPort: field.port({
    description: "Port of /metrics, /healthz and /readyz",
    default: DEFAULTS.scheduler.metricsPort,
    env: "LACEWING_SCHEDULER_METRICS_PORT",
  }),
  maxPeersPerHost: field.number({
    description: "Most peers (downloads and cached tasks) one host may have registered at once",
    default: 20_000,
    check: positiveInteger,
  }),
  maxHostsPerOwner: field.number({
    description: "Most host ids one certificate at one address may announce",
    default: 64,
    check: positiveInteger,
  }),
  ...securityConfigFields("LACEWING_SCHEDULER"),
};

export type SchedulerConfig = ConfigOf<typeof schedulerConfigSchema>;

export function loadSchedulerConfig(sources: ConfigSources = {}): SchedulerConfig {
  return loadConfig(schedulerConfigSchema, sources);
}
