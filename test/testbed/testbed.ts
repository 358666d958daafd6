// The network testbed: an origin (nginx), a scheduler, a seed peer and N
// peer hosts, each in its own network namespace with its uplink capped.
// A scenario starts the daemons it needs, has every peer dfget the same blob
// at once, and reports the time to the last peer and what the origin sent.
//
//   const testbed = await Testbed.start({ peers: 8, rateMbit: 200, sizeMiB: 128 });
//   try { console.log(await testbed.run("p2p")); } finally { await testbed.close(); }
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, open, readdir, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BIN } from "../helpers/processes.js";
import { startLeecher, startSwarm } from "./bittorrent.js";
import {
  NginxOrigin,
  childCpuSeconds,
  machineCpu,
  runInHost,
  startDfdaemon,
  startScheduler,
  type DfdaemonProcess,
  type HostProcess,
  type SchedulerProcess,
} from "./cluster.js";
import { DEFAULTS } from "@lacewing/common";
import { hasCommand } from "./command.js";
import { Network, isAlive, removeLeftovers, type Host } from "./netns.js";

export type ScenarioName = "p2p" | "origin" | "link" | "bittorrent" | "p2p-kill" | "p2p-cut" | ZoneScenario;

/** Zoned testbeds only (`zones`): the two zones' peers download at once, the scheduler in one topology mode. */
export type ZoneScenario = "zones-isolation" | "zones-affinity" | "zones-affinity-once" | "zones-affinity-seeds";

const ZONE_PLANS: Record<ZoneScenario, { topology: "isolation" | "affinity"; crossZoneOnce: boolean; seedPerZone: boolean }> = {
  "zones-isolation": { topology: "isolation", crossZoneOnce: false, seedPerZone: false },
  "zones-affinity": { topology: "affinity", crossZoneOnce: false, seedPerZone: false },
  "zones-affinity-once": { topology: "affinity", crossZoneOnce: true, seedPerZone: false },
  "zones-affinity-seeds": { topology: "affinity", crossZoneOnce: true, seedPerZone: true },
};

function isZoneScenario(scenario: ScenarioName): scenario is ZoneScenario {
  return scenario in ZONE_PLANS;
}

/** The idc every daemon of zone z announces (--idc). */
export function zoneIdc(zone: number): string {
  return `zone-${String.fromCharCode(97 + zone)}`;
}

export const SCENARIOS: Record<ScenarioName, string> = {
  p2p: "p2p: scheduler + seed peer + peers",
  origin: "straight from origin (dfdaemon, no scheduler)",
  link: "one curl over one link (calibration)",
  bittorrent: "BitTorrent: aria2c seeder on the origin host",
  "p2p-kill": "p2p, a serving peer's daemon killed (SIGKILL) mid-transfer",
  "p2p-cut": "p2p, a serving peer's link cut mid-transfer (packets dropped, no RST)",
  "zones-isolation": "2 zones, isolation, one seed (in zone a)",
  "zones-affinity": "2 zones, affinity, one seed (in zone a)",
  "zones-affinity-once": "2 zones, affinity --cross-zone-once, one seed (in zone a)",
  "zones-affinity-seeds": "2 zones, affinity --cross-zone-once, a seed in each zone",
};

/** How a fault scenario takes a peer host away while it serves others. */
const FAULTS = { "p2p-kill": "kill", "p2p-cut": "cut" } as const;
type FaultScenario = keyof typeof FAULTS;

function isFaultScenario(scenario: ScenarioName): scenario is FaultScenario {
  return scenario in FAULTS;
}

/** What a fault scenario did and how the others took it. */
export interface FaultReport {
  kind: "kill" | "cut";
  /** The peer host taken away: the first to have served a sixteenth of the blob to others. */
  host: string;
  /** Seconds after launch the fault was made. */
  atSeconds: number;
  /** Bytes that host had served when it went. */
  servedBytes: number;
  /**
   * Seconds from the fault until the other daemons counted a failed piece
   * request (its in-flight pieces given up and asked elsewhere); undefined
   * when none failed (nothing was in flight from it).
   */
  piecesMovedSeconds: number | undefined;
  /** Seconds from the fault until the scheduler dropped the host from its registry (its GC); undefined if it did not before the end. */
  schedulerDroppedSeconds: number | undefined;
}

export interface TestbedOptions {
  peers: number;
  /** Uplink cap of every host, Mbit/s. */
  rateMbit: number;
  sizeMiB: number;
  /** Parent of the run directory (blob, daemon data, logs); the system temp dir by default. */
  dir?: string;
  /** Keep the run directory after close, for reading logs. */
  keep?: boolean;
  /** Extra dfdaemon flags for the seed peer and for the peers (p2p scenario), e.g. `["--upload-limit", "8"]`, for tuning runs. */
  seedArgs?: readonly string[];
  peerArgs?: readonly string[];
  /** Extra dfget flags for every download, e.g. `["--piece-length", "1MiB"]`. */
  dfgetArgs?: readonly string[];
  /** Sample every daemon's cached and uploaded bytes this often during the downloads (ms); 0 for no timeline. */
  timelineMs?: number;
  /**
   * Two zones: origin, scheduler, the seed and the first half of the peers
   * in zone a, a second seed host (`seed-b`) and the rest in zone b, joined
   * by a router whose link into each zone is capped at `interZoneMbit`
   * (default: the hosts' rate) and counted. Only the zone scenarios run on it.
   */
  zones?: { interZoneMbit?: number };
  /** Fault scenarios: after the other downloads end, keep watching this long (ms) for the scheduler to drop the host taken away; 0 stops at their end. */
  watchSchedulerDropMs?: number;
  /** Progress lines; silent by default. */
  log?: (line: string) => void;
}

export interface PeerDownload {
  host: string;
  /** From launching every dfget at once to this one's exit. */
  seconds: number;
  /** dfget's own --json report, when it ran dfget. */
  report?: { elapsedMs: number; traffic: { origin: number; peers: number; cache: number } };
}

export interface ScenarioResult {
  scenario: ScenarioName;
  blobBytes: number;
  /** F/U: the blob over one host's uplink; no peer can finish sooner, since the origin's uplink carries every byte at least once. */
  lowerBoundSeconds: number;
  /** From launching every download at once until the last one exited, process start-up included. */
  secondsToLastPeer: number;
  /**
   * From the first daemon taking a download request (exit time minus the
   * daemon's own elapsed time) until the last download exited: the same
   * figure without dfget's start-up, which N processes starting at once on
   * one machine's few cores stretch far beyond what one host pays.
   */
  secondsFromFirstRequest: number;
  originBytes: number;
  originRequests: number;
  /** Origin body bytes by testbed host name. */
  originBytesByHost: Record<string, number>;
  downloads: PeerDownload[];
  /** p2p only: whether every dfdaemon showed up at the scheduler before the downloads began. */
  announced?: boolean;
  /** Piece bytes each dfdaemon served to other peers (dfget scenarios). */
  uploadBytesByHost?: Record<string, number>;
  /** Piece requests over every daemon: served by result (ok, busy, elsewhere, …) and failed by reason. */
  pieceCounters?: Record<string, number>;
  /** With `timelineMs`: seconds since launch, and each daemon's cached and uploaded bytes then. */
  timeline?: Array<{ seconds: number; hosts: Record<string, { cached: number; uploaded: number }> }>;
  /** CPU during the downloads (dfget scenarios): the whole machine's busy fraction, and seconds used by each testbed process. */
  cpu?: { cores: number; busy: number; secondsByProcess: Record<string, number> };
  /** Fault scenarios: the host taken away (left out of `downloads`) and how long the others took to notice. */
  fault?: FaultReport;
  /** Zone scenarios: bytes the router forwarded between the zones during the downloads, and the origin's bytes to the other zone. */
  crossZone?: { total: number; pieces: number; originToZoneB: number };
}

const MiB = 1024 * 1024;
const BLOB_PATH = "/blob.bin";
/** Run directories are named after the process, so a crashed run's can be told apart and removed. */
const DIR_PREFIX = "lacewing-testbed-";

async function removeLeftoverDirs(parent: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [])) {
    const pid = Number(new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name)?.[1] ?? NaN);
    if (Number.isNaN(pid) || isAlive(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true });
    removed.push(join(parent, name));
  }
  return removed;
}

/** Why the testbed cannot run here, or undefined if it can (root, ip, tc, nginx, curl). */
export async function testbedUnavailable(): Promise<string | undefined> {
  if (process.platform !== "linux") return "needs Linux network namespaces";
  if (process.getuid?.() !== 0) return "needs root";
  for (const tool of ["ip", "tc", "nginx", "curl"]) if (!(await hasCommand(tool))) return `needs ${tool}`;
  return undefined;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Writes `size` random bytes to `path` and returns their sha256. */
async function writeBlob(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const file = await open(path, "w");
  try {
    for (let written = 0; written < size;) {
      const chunk = randomBytes(Math.min(8 * MiB, size - written));
      hash.update(chunk);
      await file.write(chunk);
      written += chunk.byteLength;
    }
  } finally {
    await file.close();
  }
  return hash.digest("hex");
}

export class Testbed {
  readonly options: Required<Omit<TestbedOptions, "log">>;
  readonly blobBytes: number;
  readonly #log: (line: string) => void;
  readonly #runDir: string;
  readonly #network: Network;
  readonly #origin: NginxOrigin;
  readonly #blobSha256: string;
  /** Processes of the scenario in progress, stopped by close() if it is interrupted. */
  readonly #running = new Set<HostProcess>();
  #closed = false;

  private constructor(options: Testbed["options"], log: (line: string) => void, runDir: string, network: Network, origin: NginxOrigin, blobSha256: string) {
    this.options = options;
    this.blobBytes = Math.round(options.sizeMiB * MiB);
    this.#log = log;
    this.#runDir = runDir;
    this.#network = network;
    this.#origin = origin;
    this.#blobSha256 = blobSha256;
  }

  /** Removes a crashed run's leftovers, builds the network, writes the blob and starts the origin. */
  static async start(input: TestbedOptions): Promise<Testbed> {
    const options = {
      peers: input.peers,
      rateMbit: input.rateMbit,
      sizeMiB: input.sizeMiB,
      dir: input.dir ?? tmpdir(),
      keep: input.keep ?? false,
      seedArgs: input.seedArgs ?? [],
      peerArgs: input.peerArgs ?? [],
      dfgetArgs: input.dfgetArgs ?? [],
      timelineMs: input.timelineMs ?? 0,
      watchSchedulerDropMs: input.watchSchedulerDropMs ?? 0,
      zones: input.zones ?? {},
    };
    const zoned = input.zones !== undefined;
    if (!Number.isInteger(options.peers) || options.peers < 1) throw new Error("peers must be a positive integer");
    if (!(options.rateMbit > 0)) throw new Error("rate must be positive");
    if (!(options.sizeMiB > 0)) throw new Error("size must be positive");
    if (zoned && !(await hasCommand("iptables"))) throw new Error("a testbed with zones needs iptables (apt-get install iptables) to count what crosses them");
    const log = input.log ?? (() => undefined);
    const leftovers = [...(await removeLeftovers()), ...(await removeLeftoverDirs(options.dir))];
    if (leftovers.length > 0) log(`removed leftovers of an earlier run: ${leftovers.join(" ")}`);
    const runDir = await mkdtemp(join(options.dir, `${DIR_PREFIX}${process.pid}-`));
    let network: Network | undefined;
    let origin: NginxOrigin | undefined;
    try {
      const peerNames = Array.from({ length: options.peers }, (_, i) => `peer${i + 1}`);
      const names = ["origin", "scheduler", "seed", ...(zoned ? ["seed-b"] : []), ...peerNames];
      const zoneOf: Record<string, number> = { origin: 0, scheduler: 0, seed: 0, "seed-b": 1 };
      peerNames.forEach((name, i) => (zoneOf[name] = i < Math.ceil(options.peers / 2) ? 0 : 1));
      network = await Network.create({
        hosts: names,
        rateMbit: options.rateMbit,
        ...(zoned ? { zones: { of: zoneOf, interZoneMbit: options.zones.interZoneMbit ?? options.rateMbit, piecePort: DEFAULTS.dfdaemon.uploadPort } } : {}),
      });
      log(`network: ${names.length} hosts on bridge ${network.bridge}, uplinks capped at ${options.rateMbit} Mbit/s`);
      origin = new NginxOrigin(network.host("origin"), join(runDir, "origin"));
      await mkdir(origin.root, { recursive: true });
      const blobSha256 = await writeBlob(join(origin.root, BLOB_PATH), Math.round(options.sizeMiB * MiB));
      await origin.start();
      log(`origin: nginx at ${origin.url(BLOB_PATH)} (${options.sizeMiB} MiB, sha256 ${blobSha256.slice(0, 12)}…)`);
      return new Testbed(options, log, runDir, network, origin, blobSha256);
    } catch (error) {
      await origin?.close();
      await network?.close();
      if (!options.keep) await rm(runDir, { recursive: true, force: true });
      throw error;
    }
  }

  get lowerBoundSeconds(): number {
    return (this.blobBytes * 8) / (this.options.rateMbit * 1e6);
  }

  get peerHosts(): Host[] {
    return Array.from({ length: this.options.peers }, (_, i) => this.#network.host(`peer${i + 1}`));
  }

  async run(scenario: ScenarioName): Promise<ScenarioResult> {
    if (this.#closed) throw new Error("testbed is closed");
    const dir = join(this.#runDir, scenario);
    await mkdir(dir, { recursive: true });
    try {
      if (scenario === "link") return await this.#runLink();
      if (scenario === "bittorrent") return await this.#runBitTorrent(dir);
      if (isZoneScenario(scenario) !== (this.#network.router !== undefined))
        throw new Error(`${scenario} ${isZoneScenario(scenario) ? "needs a testbed with zones" : "runs on a testbed without zones"}`);
      if (isZoneScenario(scenario)) return await this.#runDfget("p2p", dir, { scenario, zones: ZONE_PLANS[scenario] });
      return await this.#runDfget(scenario === "origin" ? "origin" : "p2p", dir, {
        scenario,
        ...(isFaultScenario(scenario) ? { fault: FAULTS[scenario] } : {}),
      });
    } finally {
      await this.#stopRunning();
      if (!this.options.keep) await rm(dir, { recursive: true, force: true });
    }
  }

  async #stopRunning(): Promise<void> {
    await Promise.all([...this.#running].map((p) => p.stop()));
    this.#running.clear();
  }

  #track<T extends HostProcess>(process: T): T {
    this.#running.add(process);
    return process;
  }

  async #runDfget(
    mode: "p2p" | "origin",
    dir: string,
    plan: { scenario: ScenarioName; fault?: FaultReport["kind"]; zones?: (typeof ZONE_PLANS)[ZoneScenario] },
  ): Promise<ScenarioResult> {
    const { scenario, fault, zones } = plan;
    const peers = this.peerHosts;
    const daemons = new Map<string, DfdaemonProcess>();
    let scheduler: SchedulerProcess | undefined;
    let announced: boolean | undefined;
    // With zones, every daemon says which zone it is in.
    const zoneArgs = (host: Host): string[] => (zones === undefined ? [] : ["--idc", zoneIdc(host.zone)]);
    const seedHosts = [this.#network.host("seed"), ...(zones?.seedPerZone === true ? [this.#network.host("seed-b")] : [])];
    if (mode === "p2p") {
      const schedulerArgs = zones === undefined ? [] : ["--topology", zones.topology, ...(zones.crossZoneOnce ? ["--cross-zone-once"] : [])];
      scheduler = this.#track(await startScheduler(this.#network.host("scheduler"), join(dir, "scheduler"), schedulerArgs));
      for (const seedHost of seedHosts)
        daemons.set(
          seedHost.name,
          this.#track(
            await startDfdaemon(seedHost, join(dir, seedHost.name), {
              scheduler: scheduler.address,
              seed: true,
              extraArgs: [...this.options.seedArgs, ...zoneArgs(seedHost)],
            }),
          ),
        );
      this.#log(`${scenario}: scheduler at ${scheduler.address}, seed peers at ${seedHosts.map((h) => h.ip).join(", ")}`);
    }
    await Promise.all(
      peers.map(async (host) => {
        const options = scheduler === undefined ? {} : { scheduler: scheduler.address, extraArgs: [...this.options.peerArgs, ...zoneArgs(host)] };
        daemons.set(host.name, this.#track(await startDfdaemon(host, join(dir, host.name), options)));
      }),
    );
    if (scheduler !== undefined) {
      // A download that starts before its host is known cannot be given parents; wait for the announcements, but not forever:
      // a build without the scheduler client never announces, and its figures are still worth printing.
      announced = false;
      for (let i = 0; i < 100 && !announced; i++) {
        const hosts = await scheduler.hosts();
        announced = hosts !== undefined && hosts.seed >= seedHosts.length && hosts.normal >= peers.length;
        if (!announced) await sleep(100);
      }
      if (!announced) this.#log(`${scenario}: the dfdaemons did not announce themselves to the scheduler within 10 s; measuring anyway`);
    }

    const processes = [...this.#running];
    const cpuBefore = await Promise.all(processes.map((p) => p.cpuSeconds()));
    const machineBefore = await machineCpu();
    const mark = await this.#origin.mark();
    const crossBefore = await this.#network.crossZoneTraffic();
    this.#log(`${scenario}: ${peers.length} dfgets of ${this.#origin.url(BLOB_PATH)} at once`);
    const started = performance.now();
    const timeline: NonNullable<ScenarioResult["timeline"]> = [];
    let sampling = this.options.timelineMs > 0;
    const sampler = (async () => {
      while (sampling) {
        const seconds = (performance.now() - started) / 1000;
        const hosts: (typeof timeline)[number]["hosts"] = {};
        const samples = await Promise.all([...daemons.values()].map((d) => d.progress()));
        [...daemons.keys()].forEach((name, i) => (hosts[name] = samples[i] ?? { cached: NaN, uploaded: NaN }));
        timeline.push({ seconds, hosts });
        await sleep(Math.max(0, this.options.timelineMs - (performance.now() - started - seconds * 1000)));
      }
    })();
    const dfgetCpu: Record<string, number> = {};
    const running = peers.map(async (host): Promise<PeerDownload & { output: string }> => {
      const output = join(dir, host.name, "blob.out");
      const args = [
        BIN.dfget,
        this.#origin.url(BLOB_PATH),
        "-O",
        output,
        "--socket",
        daemons.get(host.name)!.socket,
        "--no-progress",
        "--json",
        // A host whose daemon a fault takes away is left out: its dfget must end with the daemon, not wait for it to come back.
        "--reconnect-timeout",
        "0",
        ...this.options.dfgetArgs,
      ];
      const { result, cpuSeconds } = await childCpuSeconds(host, process.execPath, args, join(dir, host.name, "dfget.stat"));
      const seconds = (performance.now() - started) / 1000;
      if (result.code !== 0) throw new Error(`${scenario}: dfget on ${host.name} exited ${result.code}: ${result.stderr.trim()}`);
      const report = JSON.parse(result.stdout) as NonNullable<PeerDownload["report"]>;
      dfgetCpu[`${host.name}/dfget`] = cpuSeconds;
      return { host: host.name, seconds, report: { elapsedMs: report.elapsedMs, traffic: report.traffic }, output };
    });
    let downloads: Array<PeerDownload & { output: string }>;
    let faultReport: FaultReport | undefined;
    if (fault === undefined) downloads = await Promise.all(running);
    else {
      // The taken host's own download fails or hangs: it is left out, and ends when its daemon is stopped.
      running.forEach((download) => download.catch(() => undefined));
      const victim = await this.#waitForServer(daemons, peers, running);
      const others = running.filter((_, i) => peers[i] !== victim);
      faultReport = await this.#makeFault(fault, victim, daemons, scheduler!, started, () => Promise.all(others));
      downloads = await Promise.all(others);
      daemons.delete(victim.name);
    }
    sampling = false;
    await sampler;
    const secondsToLastPeer = Math.max(...downloads.map((d) => d.seconds));
    const firstRequest = Math.min(...downloads.map((d) => d.seconds - d.report!.elapsedMs / 1000));
    const machineAfter = await machineCpu();
    const cpuAfter = await Promise.all(processes.map((p) => p.cpuSeconds()));
    const cpuSecondsByProcess: Record<string, number> = {};
    // A process gone by now (the daemon a fault scenario killed) has no count left to subtract from.
    processes.forEach((p, i) => {
      if (cpuAfter[i]! > 0) cpuSecondsByProcess[`${p.host.name}/${p.name}`] = cpuAfter[i]! - cpuBefore[i]!;
    });
    Object.assign(cpuSecondsByProcess, dfgetCpu);
    const uploadBytesByHost: Record<string, number> = {};
    const pieceCounters: Record<string, number> = {};
    for (const [name, daemon] of daemons) {
      uploadBytesByHost[name] = (await daemon.uploadBytes()) ?? NaN;
      for (const [key, value] of Object.entries(await daemon.pieceCounters())) pieceCounters[key] = (pieceCounters[key] ?? 0) + value;
    }
    // Stop the daemons before reading the access log: nginx logs a request when it ends.
    await this.#stopRunning();
    const traffic = await this.#origin.trafficSince(mark);
    const crossAfter = await this.#network.crossZoneTraffic();
    const zoneB = new Set([...this.#network.hosts.values()].filter((h) => h.zone === 1).map((h) => h.ip));
    const crossZone =
      zones === undefined
        ? undefined
        : {
            total: crossAfter.total - crossBefore.total,
            pieces: crossAfter.pieces - crossBefore.pieces,
            originToZoneB: Object.entries(traffic.bytesByClient).reduce((n, [ip, bytes]) => (zoneB.has(ip) ? n + bytes : n), 0),
          };
    for (const d of downloads) {
      const digest = await sha256File(d.output);
      if (digest !== this.#blobSha256) throw new Error(`${scenario}: ${d.host} got sha256 ${digest}, expected ${this.#blobSha256}`);
    }
    this.#log(`${scenario}: every output matches the blob's sha256`);
    return {
      ...this.#result(scenario, secondsToLastPeer, secondsToLastPeer - Math.max(0, firstRequest), traffic),
      downloads: downloads.map(({ output: _output, ...d }) => d),
      uploadBytesByHost,
      pieceCounters,
      ...(timeline.length > 0 ? { timeline } : {}),
      cpu: {
        cores: cpus().length,
        busy: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
        secondsByProcess: cpuSecondsByProcess,
      },
      ...(announced === undefined ? {} : { announced }),
      ...(faultReport === undefined ? {} : { fault: faultReport }),
      ...(crossZone === undefined ? {} : { crossZone }),
    };
  }

  /** The first peer host (not the seed) that has served a sixteenth of the blob to others while downloads run. */
  async #waitForServer(daemons: Map<string, DfdaemonProcess>, peers: Host[], running: Array<Promise<unknown>>): Promise<Host> {
    let settled = false;
    void Promise.allSettled(running).then(() => (settled = true));
    while (!settled) {
      const served = await Promise.all(peers.map(async (host) => (await daemons.get(host.name)!.uploadBytes()) ?? 0));
      const index = served.findIndex((bytes) => bytes >= this.blobBytes / 16);
      if (index >= 0) return peers[index]!;
      await sleep(20);
    }
    throw new Error("every download ended before any peer served a sixteenth of the blob: nothing to take away (a larger blob or a lower rate)");
  }

  /**
   * Takes `victim` away (its daemon killed, or its link set down: no RST,
   * packets dropped) and watches, until `othersDone` resolves, for the other
   * daemons' first failed piece request and the scheduler dropping the host.
   */
  async #makeFault(
    kind: FaultReport["kind"],
    victim: Host,
    daemons: Map<string, DfdaemonProcess>,
    scheduler: SchedulerProcess,
    launched: number,
    othersDone: () => Promise<unknown>,
  ): Promise<FaultReport> {
    const others = [...daemons.entries()].filter(([name]) => name !== victim.name).map(([, daemon]) => daemon);
    const failures = async (): Promise<number> =>
      (await Promise.all(others.map((d) => d.pieceCounters()))).reduce(
        (sum, counters) => sum + Object.entries(counters).reduce((n, [key, value]) => (key.startsWith("failed ") ? n + value : n), 0),
        0,
      );
    const failedBefore = await failures();
    const knownBefore = (await scheduler.hosts())?.normal ?? 0;
    const servedBytes = (await daemons.get(victim.name)!.uploadBytes()) ?? 0;
    const at = performance.now();
    if (kind === "kill") daemons.get(victim.name)!.child.kill("SIGKILL");
    else await runInHost(victim, "ip", ["link", "set", "eth0", "down"]);
    this.#log(`${kind}: took ${victim.name} away after it served ${(servedBytes / MiB).toFixed(1)} MiB`);
    let piecesMovedSeconds: number | undefined;
    let schedulerDroppedSeconds: number | undefined;
    let done = false;
    const watching = (async () => {
      while (!done && (piecesMovedSeconds === undefined || schedulerDroppedSeconds === undefined)) {
        const now = (performance.now() - at) / 1000;
        if (piecesMovedSeconds === undefined && (await failures()) > failedBefore) piecesMovedSeconds = now;
        if (schedulerDroppedSeconds === undefined && ((await scheduler.hosts())?.normal ?? knownBefore) < knownBefore) schedulerDroppedSeconds = now;
        await sleep(50);
      }
    })();
    try {
      await othersDone();
      const until = performance.now() + this.options.watchSchedulerDropMs;
      while (schedulerDroppedSeconds === undefined && performance.now() < until) await sleep(100);
    } finally {
      done = true;
      await watching;
      // The next scenario runs on the same network.
      if (kind === "cut") await runInHost(victim, "ip", ["link", "set", "eth0", "up"]);
    }
    return { kind, host: victim.name, atSeconds: (at - launched) / 1000, servedBytes, piecesMovedSeconds, schedulerDroppedSeconds };
  }

  /**
   * The BitTorrent baseline: tracker and seeder on the origin host, an
   * aria2c on every peer host started at once (and seeding once done), timed
   * to each one's own completion event.
   */
  async #runBitTorrent(dir: string): Promise<ScenarioResult> {
    const originHost = this.#network.host("origin");
    const swarm = await startSwarm(originHost, join(this.#origin.root, BLOB_PATH), dir);
    this.#track(swarm.tracker);
    this.#track(swarm.seeder);
    const seederCpuBefore = await swarm.seeder.cpuSeconds();
    const uploadedBefore = await swarm.seederUploaded();
    const machineBefore = await machineCpu();
    this.#log(`bittorrent: ${this.options.peers} aria2c leechers of ${swarm.torrent} at once`);
    const started = performance.now();
    const leechers = await Promise.all(
      this.peerHosts.map(async (host) => {
        const leecher = await startLeecher(host, swarm.torrent, join(dir, host.name));
        this.#track(leecher.process);
        return { host, leecher };
      }),
    );
    const finished = await Promise.all(leechers.map(({ leecher }) => leecher.completed));
    const machineAfter = await machineCpu();
    const cpuSecondsByProcess: Record<string, number> = {};
    for (const { host, leecher } of leechers) cpuSecondsByProcess[`${host.name}/aria2c`] = await leecher.process.cpuSeconds();
    cpuSecondsByProcess["origin/aria2c-seeder"] = (await swarm.seeder.cpuSeconds()) - seederCpuBefore;
    const originBytes = (await swarm.seederUploaded()) - uploadedBefore;
    const downloads = leechers.map(({ host }, i) => ({ host: host.name, seconds: (finished[i]! - started) / 1000 }));
    const secondsToLastPeer = Math.max(...downloads.map((d) => d.seconds));
    await this.#stopRunning();
    for (const { host, leecher } of leechers) {
      const digest = await sha256File(leecher.output);
      if (digest !== this.#blobSha256) throw new Error(`bittorrent: ${host.name} got sha256 ${digest}, expected ${this.#blobSha256}`);
    }
    this.#log("bittorrent: every output matches the blob's sha256");
    return {
      scenario: "bittorrent",
      blobBytes: this.blobBytes,
      lowerBoundSeconds: this.lowerBoundSeconds,
      secondsToLastPeer,
      secondsFromFirstRequest: secondsToLastPeer,
      originBytes,
      originRequests: 0,
      originBytesByHost: { origin: originBytes },
      downloads,
      cpu: {
        cores: cpus().length,
        busy: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
        secondsByProcess: cpuSecondsByProcess,
      },
    };
  }

  /** One plain HTTP transfer over one capped link: what a single host's uplink actually delivers. */
  async #runLink(): Promise<ScenarioResult> {
    const host = this.peerHosts[0]!;
    const mark = await this.#origin.mark();
    const started = performance.now();
    const result = await runInHost(host, "curl", ["-sf", "-o", "/dev/null", "-w", "%{size_download}", this.#origin.url(BLOB_PATH)]);
    const seconds = (performance.now() - started) / 1000;
    if (result.code !== 0 || Number(result.stdout) !== this.blobBytes) throw new Error(`link: curl exited ${result.code} after ${result.stdout} bytes`);
    const traffic = await this.#origin.trafficSince(mark);
    return { ...this.#result("link", seconds, seconds, traffic), downloads: [{ host: host.name, seconds }] };
  }

  #result(
    scenario: ScenarioName,
    secondsToLastPeer: number,
    secondsFromFirstRequest: number,
    traffic: Awaited<ReturnType<NginxOrigin["trafficSince"]>>,
  ): Omit<ScenarioResult, "downloads" | "announced" | "uploadBytesByHost" | "cpu" | "timeline"> {
    const byIp = new Map([...this.#network.hosts.values()].map((h) => [h.ip, h.name]));
    const originBytesByHost: Record<string, number> = {};
    for (const [ip, bytes] of Object.entries(traffic.bytesByClient)) originBytesByHost[byIp.get(ip) ?? ip] = bytes;
    return {
      scenario,
      blobBytes: this.blobBytes,
      lowerBoundSeconds: this.lowerBoundSeconds,
      secondsToLastPeer,
      secondsFromFirstRequest,
      originBytes: traffic.bytes,
      originRequests: traffic.requests,
      originBytesByHost,
    };
  }

  /** Stops every process, removes the network and (unless `keep`) the run directory. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#stopRunning();
    await this.#origin.close();
    await this.#network.close();
    if (this.options.keep) this.#log(`run directory kept: ${this.#runDir}`);
    else await rm(this.#runDir, { recursive: true, force: true });
  }
}
