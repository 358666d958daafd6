import type { Field } from "@lacewing/common";
import { MIN_PIECE_LENGTH, pieceLengthFor } from "@lacewing/common";
import { MAX_LIVE_PARENTS, REFRESH_INTERVAL_MS, dfdaemonSchema } from "@lacewing/dfdaemon";
import { schedulerConfigSchema } from "@lacewing/scheduler";

/**
 * The testbed's machine as a model input: every host runs on the same few
 * cores, and what each byte costs there was measured (docs/BENCHMARKS.md).
 * Only the calibration uses it; a real rollout has a CPU per node.
 */
export interface TestbedCpu {
  /** Cores every process shares. */
  cores: number;
  /** CPU seconds a peer host's daemon spends per GiB it receives (serving included). */
  peerCpuSecondsPerGiB: number;
  /** CPU seconds the seed spends per GiB it fetches from the origin (serving included). */
  seedCpuSecondsPerGiB: number;
  /** CPU seconds each dfget process costs before its request reaches the daemon. */
  dfgetStartCpuSeconds: number;
}

export interface DaemonTuning {
  peerConcurrency: number;
  parentPipeline: number;
  uploadLimit: number;
  superSeedWindowMs: number;
  originConcurrency: number;
  announceIntervalMs: number;
  pieceTimeoutMs: number;
  maxReschedules: number;
  refreshIntervalMs: number;
  maxLiveParents: number;
}

export interface SchedulerTuning {
  candidateParentLimit: number;
  maxReschedules: number;
  scheduleTimeoutMs: number;
  topology: "isolation" | "affinity";
  crossZoneOnce: boolean;
}

export interface SimOptions {
  /** Peer hosts that download (seeds not counted). */
  nodes: number;
  sizeBytes: number;
  /** Uplink of every peer host, Mbit/s. */
  rateMbit: number;
  /** Uplink of the seed hosts, Mbit/s. */
  seedRateMbit: number;
  /** Uplink of the origin, Mbit/s. */
  originRateMbit: number;
  /** Hosts are spread round-robin over this many zones (idc); the origin and the first seed are in zone 0. */
  zones: number;
  seeds: number;
  /** 0: the daemon's own choice for the size (pieceLengthFor). */
  pieceLength: number;
  /** One-way delay of any message between two hosts, ms. */
  latencyMs: number;
  /** Extra delay of a message that leaves a host whose uplink is busy (the queue in front of the link), ms. */
  queueMs: number;
  /** Bytes on the wire per byte of payload (TCP/IP and Ethernet headers). */
  overhead: number;
  /** When the downloads are requested, ms after the start (all at once). */
  startMs: number;
  cpu: TestbedCpu | undefined;
  /**
   * The scheduler re-judges outlier parents on every piece report, which
   * costs O(parents² log parents) per report; above 0, the simulator runs it
   * at most this often per task (sim ms) instead, and reports what every
   * report would have cost.
   */
  outlierIntervalMs: number;
  /** Children waiting for a parent are woken at most this often (sim ms); 0 wakes them on every change, as the real service does. */
  wakeIntervalMs: number;
  randomSeed: number;
  /** Fraction of peer hosts that crash mid-download (their daemon and uploads stop). */
  failFraction: number;
  daemon: DaemonTuning;
  scheduler: SchedulerTuning;
}

function defaultOf<T>(field: Field<T>): T {
  if (field.default === undefined) throw new Error(`config field "${field.description}" has no default`);
  return field.default;
}

/** The daemon's and the scheduler's own defaults, read from their config schemas. */
export function defaultDaemonTuning(): DaemonTuning {
  return {
    peerConcurrency: defaultOf(dfdaemonSchema.peerConcurrency),
    parentPipeline: defaultOf(dfdaemonSchema.parentPipeline),
    uploadLimit: defaultOf(dfdaemonSchema.uploadLimit),
    superSeedWindowMs: defaultOf(dfdaemonSchema.superSeedWindow),
    originConcurrency: defaultOf(dfdaemonSchema.originConcurrency),
    announceIntervalMs: defaultOf(dfdaemonSchema.announceInterval),
    pieceTimeoutMs: defaultOf(dfdaemonSchema.pieceTimeout),
    maxReschedules: defaultOf(dfdaemonSchema.maxReschedules),
    refreshIntervalMs: REFRESH_INTERVAL_MS,
    maxLiveParents: MAX_LIVE_PARENTS,
  };
}

export function defaultSchedulerTuning(): SchedulerTuning {
  return {
    candidateParentLimit: defaultOf(schedulerConfigSchema.candidateParentLimit),
    maxReschedules: defaultOf(schedulerConfigSchema.maxReschedules),
    scheduleTimeoutMs: defaultOf(schedulerConfigSchema.scheduleTimeout),
    topology: defaultOf(schedulerConfigSchema.topology),
    crossZoneOnce: defaultOf(schedulerConfigSchema.crossZoneOnce),
  };
}

export type SimInput = Partial<Omit<SimOptions, "daemon" | "scheduler">> &
  Pick<SimOptions, "nodes" | "sizeBytes" | "rateMbit"> & { daemon?: Partial<DaemonTuning>; scheduler?: Partial<SchedulerTuning> };

/** Every option with its default, in one place. */
export function simOptionsOf(input: SimInput): SimOptions {
  const options: SimOptions = {
    nodes: input.nodes,
    sizeBytes: input.sizeBytes,
    rateMbit: input.rateMbit,
    seedRateMbit: input.seedRateMbit ?? input.rateMbit,
    originRateMbit: input.originRateMbit ?? input.rateMbit,
    zones: input.zones ?? 1,
    seeds: input.seeds ?? 1,
    pieceLength: input.pieceLength ?? 0,
    latencyMs: input.latencyMs ?? 0.25,
    queueMs: input.queueMs ?? 1,
    overhead: input.overhead ?? 1.05,
    startMs: input.startMs ?? 0,
    cpu: input.cpu,
    outlierIntervalMs: input.outlierIntervalMs ?? 100,
    wakeIntervalMs: input.wakeIntervalMs ?? 50,
    randomSeed: input.randomSeed ?? 1,
    failFraction: input.failFraction ?? 0,
    daemon: { ...defaultDaemonTuning(), ...input.daemon },
    scheduler: { ...defaultSchedulerTuning(), ...input.scheduler },
  };
  const problem = optionsProblem(options);
  if (problem !== undefined) throw new RangeError(problem);
  return options;
}

function optionsProblem(o: SimOptions): string | undefined {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 100_000) return `--nodes must be a whole number from 1 to 100000, got ${o.nodes}`;
  if (!Number.isFinite(o.sizeBytes) || o.sizeBytes < 1) return `--size must be at least 1 byte, got ${o.sizeBytes}`;
  for (const [flag, value] of [
    ["--rate", o.rateMbit],
    ["--seed-rate", o.seedRateMbit],
    ["--origin-rate", o.originRateMbit],
  ] as const)
    if (!Number.isFinite(value) || value <= 0) return `${flag} must be a positive number of Mbit/s, got ${value}`;
  if (!Number.isInteger(o.zones) || o.zones < 1 || o.zones > o.nodes) return `--zones must be a whole number from 1 to --nodes, got ${o.zones}`;
  if (!Number.isInteger(o.seeds) || o.seeds < 0 || o.seeds > 64) return `--seeds must be a whole number from 0 to 64, got ${o.seeds}`;
  if (o.pieceLength !== 0 && (o.pieceLength < MIN_PIECE_LENGTH / 16 || (o.pieceLength & (o.pieceLength - 1)) !== 0))
    return `--piece-length must be a power of two of at least 64KiB, got ${o.pieceLength}`;
  if (!(o.latencyMs >= 0) || !(o.queueMs >= 0)) return "--latency and --queue must not be negative";
  if (!(o.overhead >= 1)) return `--overhead must be at least 1, got ${o.overhead}`;
  if (!(o.failFraction >= 0 && o.failFraction < 1)) return `--fail must be in [0, 1), got ${o.failFraction}`;
  if (!(o.outlierIntervalMs >= 0)) return `--outlier-interval must not be negative`;
  if (!(o.wakeIntervalMs >= 0)) return `--wake-interval must not be negative`;
  return undefined;
}

export function pieceLengthOf(options: SimOptions): number {
  return options.pieceLength > 0 ? options.pieceLength : pieceLengthFor(options.sizeBytes);
}

/** Mbit/s to payload-free bytes per millisecond. */
export function bytesPerMs(mbit: number): number {
  return (mbit * 1e6) / 8 / 1000;
}

/** F/U: the size over one peer host's uplink, in ms — the least time any host can take to receive it. */
export function lowerBoundMs(options: SimOptions): number {
  return options.sizeBytes / bytesPerMs(options.rateMbit);
}
