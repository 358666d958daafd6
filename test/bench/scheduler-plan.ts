// The pure part of the scheduler benchmark (test/bench/scheduler.ts): its
// flags, which simulated host each peer lives on, which connection (and so
// which certificate) speaks for each host, and the summary figures.
import { parseArgs } from "node:util";
import { rendezvousPick } from "@lacewing/common";

export interface BenchOptions {
  hosts: number;
  tasks: number;
  peersPerTask: number;
  pieces: number;
  replicas: number;
  workers: number;
  /** Registrations made once every peer is live, to time register → parents at full size. */
  probes: number;
  /** Downloads running at once (AnnouncePeer streams open), over all workers. */
  downloads: number;
  json: boolean;
  /** Pin each scheduler to one core with taskset. */
  pin: boolean;
}

/**
 * The scheduler's own default bounds the benchmark must stay inside, as a
 * cluster of real daemons would: hosts per certificate and address
 * (maxHostsPerOwner), peers per host (maxPeersPerHost), calls per connection
 * (the gRPC server's max_concurrent_streams).
 */
export const SCHEDULER_BOUNDS = { hostsPerOwner: 64, peersPerHost: 20_000, streamsPerConnection: 1000, pieces: 131_072 } as const;

/** Bytes per piece of every benchmark task: the daemon's minimum (1 MiB). */
export const PIECE_LENGTH = 1024 * 1024;

export class BenchUsageError extends Error {}

/** --help: the usage, printed with exit code 0. */
export class BenchHelp extends Error {}

const USAGE =
  "usage: npm run bench:scheduler -- --hosts H --tasks T --peers-per-task P --pieces N [--replicas R] [--workers W] [--downloads D] [--probes K] [--no-pin] [--json]";

/** Parses and checks the flags; a bad one throws a BenchUsageError that names it. */
export function parseBenchOptions(args: readonly string[], cpus: number): BenchOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        hosts: { type: "string" },
        tasks: { type: "string" },
        "peers-per-task": { type: "string" },
        pieces: { type: "string" },
        replicas: { type: "string", default: "1" },
        workers: { type: "string" },
        probes: { type: "string" },
        downloads: { type: "string" },
        json: { type: "boolean", default: false },
        "no-pin": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    throw new BenchUsageError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values["help"] === true) throw new BenchHelp(USAGE);
  const whole = (name: string, min: number, max = Number.MAX_SAFE_INTEGER, fallback?: number): number => {
    const raw = values[name];
    if (raw === undefined) {
      if (fallback !== undefined) return fallback;
      throw new BenchUsageError(`--${name} is required\n${USAGE}`);
    }
    const value = Number(raw);
    if (typeof raw !== "string" || !/^\d+$/.test(raw) || value < min || value > max)
      throw new BenchUsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    return value;
  };
  const hosts = whole("hosts", 3, 1_000_000);
  const tasks = whole("tasks", 1, 1_000_000);
  // A task needs its origin fetcher and at least one child; probes join on one more host.
  const peersPerTask = whole("peers-per-task", 2, hosts - 1);
  const pieces = whole("pieces", 1, SCHEDULER_BOUNDS.pieces);
  const replicas = whole("replicas", 1, 16);
  const workers = whole("workers", 1, 64, Math.max(1, Math.min(4, cpus * 2)));
  const probes = whole("probes", 0, tasks, Math.min(tasks, 2000));
  const downloads = whole("downloads", 1, tasks * peersPerTask, Math.min(tasks * (peersPerTask - 1), 512));
  const peersPerHost = Math.ceil((tasks * (peersPerTask + 1)) / hosts);
  if (peersPerHost > SCHEDULER_BOUNDS.peersPerHost)
    throw new BenchUsageError(
      `${tasks} tasks of ${peersPerTask} peers on ${hosts} hosts is ${peersPerHost} peers a host; the scheduler allows ${SCHEDULER_BOUNDS.peersPerHost}`,
    );
  return { hosts, tasks, peersPerTask, pieces, replicas, workers, probes, downloads, json: values["json"] === true, pin: values["no-pin"] !== true };
}

/**
 * The host of peer `index` of `task` (index 0 fetches from the origin,
 * `peersPerTask` is the probe). The peers of a task sit `step` hosts apart,
 * so they are on different hosts (a parent on the child's own host is never
 * handed out); the origin fetchers of tasks 0, 1, 2 … are on hosts 0, 1, 2 …,
 * so no host is the only parent of many tasks at once, and every host
 * carries about the same number of peers.
 */
export function hostOfPeer(task: number, index: number, options: Pick<BenchOptions, "hosts" | "peersPerTask">): number {
  const step = Math.floor(options.hosts / (options.peersPerTask + 1));
  return (task + index * step) % options.hosts;
}

/**
 * Hosts per connection: each connection is one certificate, so at most
 * maxHostsPerOwner hosts, and it carries the AnnouncePeer streams of all its
 * hosts' peers, so they must fit the server's streams per connection with
 * room to spare.
 */
export function hostsPerConnection(options: Pick<BenchOptions, "hosts" | "tasks" | "peersPerTask">): number {
  const streamsPerHost = Math.ceil((options.tasks * (options.peersPerTask + 1)) / options.hosts);
  const byStreams = Math.floor((0.9 * SCHEDULER_BOUNDS.streamsPerConnection) / Math.max(1, streamsPerHost));
  return Math.max(1, Math.min(50, byStreams));
}

export interface Layout {
  readonly hostsPerConnection: number;
  readonly connections: number;
  connectionOfHost(host: number): number;
  /** Connections are dealt to workers round-robin. */
  workerOfConnection(connection: number): number;
}

export function layoutOf(options: Pick<BenchOptions, "hosts" | "tasks" | "peersPerTask" | "workers">): Layout {
  const perConnection = hostsPerConnection(options);
  const connections = Math.ceil(options.hosts / perConnection);
  return {
    hostsPerConnection: perConnection,
    connections,
    connectionOfHost: (host) => Math.floor(host / perConnection),
    workerOfConnection: (connection) => connection % options.workers,
  };
}

/** The stable names the benchmark gives its hosts, tasks and peers. */
export const names = {
  host: (host: number): string => `bench-host-${host}`,
  url: (task: number): string => `https://origin.bench.invalid/blobs/${task}`,
  peer: (task: number, index: number): string => `bench-peer-${task}-${index}`,
};

/** The scheduler a task belongs to: the daemons' rule (rendezvous hashing of the task id over the endpoints). */
export function ownerOf(taskId: string, schedulers: readonly string[]): string {
  const owner = rendezvousPick(taskId, schedulers);
  if (owner === undefined) throw new Error("no schedulers");
  return owner;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of latencies in ms, rounded to µs. */
export function summarize(latencies: readonly number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  const round = (ms: number): number => Math.round(ms * 1000) / 1000;
  return { samples: sorted.length, p50: round(rank(0.5)), p99: round(rank(0.99)), max: round(sorted[sorted.length - 1] ?? 0) };
}
