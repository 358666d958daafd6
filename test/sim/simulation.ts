import { performance } from "node:perf_hooks";
import { pieceCountOf } from "@lacewing/common";
import { EventQueue } from "./engine/event-queue.js";
import { Fabric } from "./network/uplink.js";
import { bytesPerMs, lowerBoundMs, pieceLengthOf, simOptionsOf, type SimInput, type SimOptions } from "./model/options.js";
import { SimDownload, SimHost, type Traffic, type World } from "./model/sim-host.js";
import { SimScheduler, type SchedulerStats } from "./model/sim-scheduler.js";
import { mulberry32 } from "./model/random.js";

/** One host's totals, for the invariants and the busiest uplink. */
export interface HostResult {
  id: string;
  kind: "origin" | "seed" | "peer";
  zone: number;
  sentBytes: number;
  receivedBytes: number;
  fromOriginBytes: number;
  /** ms after the start; NaN when it did not finish. */
  completedAtMs: number;
  reschedules: number;
  /** ms during which its uplink carried at least one flow. */
  uplinkBusyMs: number;
  /** Parents it synced with over the download. */
  parents: number;
}

export interface SimResult {
  options: SimOptions;
  pieceLength: number;
  totalPieces: number;
  /** F/U in ms. */
  lowerBoundMs: number;
  completed: number;
  failed: number;
  /** Of the peer hosts that finished, ms after the start (the request time included). */
  p50Ms: number;
  p99Ms: number;
  lastMs: number;
  /** p50 / p99 / last over F/U. */
  p50Ratio: number;
  p99Ratio: number;
  lastRatio: number;
  originBytes: number;
  originRatio: number;
  busiestUplink: { id: string; kind: string; sentBytes: number; ratio: number };
  crossZoneBytes: number;
  traffic: Traffic;
  scheduler: SchedulerStats;
  /** CPU model only: share of the cores the flows kept busy over the run. */
  cpuUtilisation: number | undefined;
  events: number;
  wallMs: number;
  hosts: HostResult[];
  /** Sampled every F/U / 20: share of all pieces the peer hosts hold, hosts done, bytes each kind of host sent so far. */
  timeline: TimelinePoint[];
}

export interface TimelinePoint {
  ms: number;
  heldShare: number;
  done: number;
  originSent: number;
  seedSent: number;
  peersSent: number;
  wasted: number;
}

/** Stops a run that no longer makes progress (a bug, or a swarm that cannot finish). */
const MAX_SIM_MS_FACTOR = 200;

/**
 * Runs one rollout: `nodes` peer hosts request the same task at `startMs`,
 * with one scheduler, `seeds` seed peers and one origin, until every host
 * that did not crash holds it.
 */
export async function runSimulation(input: SimInput): Promise<SimResult> {
  const options = simOptionsOf(input);
  const wallStart = performance.now();
  const random = mulberry32(options.randomSeed);
  const events = new EventQueue();
  const fabric = new Fabric(events, options.cpu === undefined ? undefined : { cores: options.cpu.cores });
  const pieceLength = pieceLengthOf(options);
  const totalPieces = pieceCountOf(options.sizeBytes, pieceLength);
  const hosts = new Map<string, SimHost>();
  const peers: SimHost[] = [];
  const seeds: SimHost[] = [];
  const traffic: Traffic = { crossZoneBytes: 0, wastedBytes: 0, refusals: { busy: 0, elsewhere: 0 }, endgameRequests: 0, parentFailures: 0 };
  const cpuPerByte = (seconds: number): number => (seconds * 1000) / 2 ** 30;
  let remaining = options.nodes;
  const downloads: SimDownload[] = [];

  const world: World = {
    events,
    options,
    scheduler: undefined as unknown as SimScheduler,
    random,
    contentLength: options.sizeBytes,
    pieceLength,
    totalPieces,
    origin: undefined as unknown as SimHost,
    digestKnown: new Uint8Array(totalPieces),
    registered: new Set(),
    traffic,
    hostOf: (hostId) => {
      const host = hosts.get(hostId);
      return host === undefined || host.crashed ? undefined : host;
    },
    cpuPerByte: (receiver) =>
      options.cpu === undefined ? 0 : cpuPerByte(receiver.kind === "seed" ? options.cpu.seedCpuSecondsPerGiB : options.cpu.peerCpuSecondsPerGiB),
    finished: (download) => {
      if (download.host.kind === "peer") remaining--;
    },
  };
  const scheduler = new SimScheduler(
    events,
    options,
    {
      trigger: (hostId) =>
        new Promise<void>((resolve) => {
          events.after(options.latencyMs, () => {
            const seed = hosts.get(hostId);
            if (seed !== undefined && !seed.crashed && seed.download === undefined) {
              seed.download = new SimDownload(world, seed, `peer-${seed.id}`, true);
              seed.download.start();
            }
            events.after(options.latencyMs, resolve);
          });
        }),
      lengthLearned: () =>
        events.after(options.latencyMs, () => {
          for (const download of world.registered) download.learnLength();
        }),
      digestLearned: (number) =>
        events.after(options.latencyMs, () => {
          world.digestKnown[number] = 1;
          for (const download of world.registered) download.digestLearned(number);
        }),
    },
    random,
  );
  (world as { scheduler: SimScheduler }).scheduler = scheduler;
  (world as { origin: SimHost }).origin = new SimHost(world, "origin", "origin", 0, fabric.uplink(bytesPerMs(options.originRateMbit), "origin"));

  for (let s = 0; s < options.seeds; s++) {
    const id = `seed-${s}`;
    const seed = new SimHost(world, id, "seed", s % options.zones, fabric.uplink(bytesPerMs(options.seedRateMbit), id));
    hosts.set(id, seed);
    seeds.push(seed);
  }
  for (let i = 0; i < options.nodes; i++) {
    const id = `host-${i}`;
    const peer = new SimHost(world, id, "peer", i % options.zones, fabric.uplink(bytesPerMs(options.rateMbit), id));
    hosts.set(id, peer);
    peers.push(peer);
  }

  // Every daemon announced itself before the rollout; then each every announceInterval, at its own phase.
  const interval = options.daemon.announceIntervalMs;
  for (const host of hosts.values()) {
    const announce = (): void => {
      if (host.crashed) return;
      scheduler.announceHost({ id: host.id, seed: host.kind === "seed", zone: host.zone, children: host.children.size, uploadedBytes: host.sentBytes });
    };
    announce();
    const tick = (): void => {
      if (remaining === 0 || host.crashed) return;
      announce();
      events.after(interval, tick);
    };
    events.after(random() * interval, tick);
  }

  // Fault injection: these hosts' daemons die halfway through their download.
  const failing = new Set<number>();
  const failures = Math.round(options.failFraction * options.nodes);
  while (failing.size < failures) failing.add(Math.floor(random() * options.nodes));

  for (const [i, host] of peers.entries()) {
    const download = new SimDownload(world, host, `peer-${host.id}`, false);
    if (failing.has(i)) download.crashAt = Math.max(1, Math.floor(totalPieces / 2));
    host.download = download;
    downloads.push(download);
    events.at(options.startMs, () => download.start());
  }

  const bound = lowerBoundMs(options);
  const timeline: TimelinePoint[] = [];
  const sample = (): void => {
    let held = 0;
    let done = 0;
    let peersSent = 0;
    for (const host of peers) {
      held += host.download?.count ?? 0;
      if (host.download?.state === "done") done++;
      peersSent += host.sentBytes;
    }
    timeline.push({
      ms: events.now,
      heldShare: held / (totalPieces * peers.length),
      done,
      originSent: world.origin.sentBytes,
      seedSent: seeds.reduce((sum, seed) => sum + seed.sentBytes, 0),
      peersSent,
      wasted: traffic.wastedBytes,
    });
    if (remaining > 0) events.after(bound / 20, sample);
  };
  events.at(0, sample);
  const limit = options.startMs + MAX_SIM_MS_FACTOR * bound + 600_000;
  const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const debug = process.env["LACEWING_SIM_DEBUG"] === "1";
  while (remaining > 0 && events.step(limit)) {
    if (debug && events.processed % 500_000 === 0)
      console.error(
        `debug: ${events.processed} events, t=${(events.now / 1000).toFixed(1)} s, remaining ${remaining}, queued ${events.size}, busy ${traffic.refusals.busy}, elsewhere ${traffic.refusals.elsewhere}`,
      );
    if (scheduler.takeKick()) {
      const started = performance.now();
      await drain();
      scheduler.stats.wallMs += performance.now() - started;
    }
  }
  scheduler.flushOutliers();
  scheduler.close();
  await drain();
  const simEnd = events.now;

  const completions = downloads
    .filter((download) => download.state === "done")
    .map((download) => download.completedAt)
    .sort((a, b) => a - b);
  const percentile = (p: number): number => completions[Math.max(0, Math.ceil(p * completions.length) - 1)] ?? Number.NaN;
  const hostResults: HostResult[] = [world.origin, ...seeds, ...peers].map((host) => ({
    id: host.id,
    kind: host.kind,
    zone: host.zone,
    sentBytes: host.sentBytes,
    receivedBytes: host.download?.receivedBytes ?? 0,
    fromOriginBytes: host.download?.fromOrigin ?? 0,
    completedAtMs: host.download?.state === "done" ? host.download.completedAt : Number.NaN,
    reschedules: host.download?.reschedules ?? 0,
    uplinkBusyMs: host.uplink.busyMs,
    parents: host.download?.parentCount ?? 0,
  }));
  const busiest = hostResults.filter((host) => host.kind !== "origin").reduce((a, b) => (b.sentBytes > a.sentBytes ? b : a));
  const p50 = percentile(0.5);
  const p99 = percentile(0.99);
  const last = completions[completions.length - 1] ?? Number.NaN;
  return {
    options,
    pieceLength,
    totalPieces,
    lowerBoundMs: bound,
    completed: completions.length,
    failed: downloads.filter((download) => download.state === "failed").length,
    p50Ms: p50,
    p99Ms: p99,
    lastMs: last,
    p50Ratio: p50 / bound,
    p99Ratio: p99 / bound,
    lastRatio: last / bound,
    originBytes: world.origin.sentBytes,
    originRatio: world.origin.sentBytes / options.sizeBytes,
    busiestUplink: { id: busiest.id, kind: busiest.kind, sentBytes: busiest.sentBytes, ratio: busiest.sentBytes / options.sizeBytes },
    crossZoneBytes: traffic.crossZoneBytes,
    traffic,
    scheduler: scheduler.stats,
    cpuUtilisation: options.cpu === undefined || simEnd === 0 ? undefined : fabric.cpuBusyMs / (simEnd * options.cpu.cores),
    events: events.processed,
    wallMs: performance.now() - wallStart,
    hosts: hostResults,
    timeline,
  };
}
