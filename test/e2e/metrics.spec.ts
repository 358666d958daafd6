// Every process's /metrics scraped while a P2P download runs and after it:
// the counters of different processes describe the same bytes, so they must
// agree — what peers downloaded from peers is what peers uploaded, what the
// seed fetched from the origin is what the origin sent, and the scheduler's
// view of the traffic is the daemons'. Each case downloads its own file and
// compares counters with what they were when it began, so it passes alone
// (--test-name-pattern) as well as after the others.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { taskIdOf } from "@lacewing/common";
import { dfget, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { dashboardQueries, matches, parseExposition, selectorsIn, type Sample } from "../helpers/dashboard.js";
import { startManagerProcess, type ManagerProcess } from "../helpers/manager.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { portOf } from "../helpers/processes.js";
import { waitUntil } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const BLOB = 32 * MiB + 777;
const PIECES = Math.ceil(BLOB / MiB);
const PREHEAT = 6 * MiB + 5;
const LOGGED = 2 * MiB + 3;

async function scrape(port: number): Promise<Sample[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(response.status, 200);
  return parseExposition(await response.text());
}

/** Sum of the series named `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const sample of samples) if (sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) sum += sample.value;
  return sum;
}

const byProcess = (s: Snapshot): Map<string, Sample[]> => new Map([["scheduler", s.scheduler], ["manager", s.manager], ...s.daemons]);
const sumOf = (values: number[]): number => values.reduce((a, b) => a + b, 0);
const key = (sample: Sample): string => `${sample.name}${JSON.stringify(sample.labels)}`;
const isMonotonic = (sample: Sample): boolean => sample.type === "counter" || sample.type === "histogram";

interface Snapshot {
  scheduler: Sample[];
  /** Keyed by daemon name; scraped after the scheduler. */
  daemons: Map<string, Sample[]>;
  manager: Sample[];
  /** Read after the daemons were scraped. */
  originBytes: number;
}

describe("metrics: every process scraped during and after a P2P download", () => {
  let root: string;
  let origin: TestOrigin;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let peers: Daemon[];
  let manager: ManagerProcess;
  let managerPort: number;
  const daemons = (): Daemon[] => [seed, ...peers];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-metrics-"));
    origin = new TestOrigin({ "/blob.bin": randomBytesOf(BLOB, 71), "/preheat.bin": randomBytesOf(PREHEAT, 72), "/logged.bin": randomBytesOf(LOGGED, 73) });
    await origin.start();
    scheduler = await startScheduler();
    const managerStarting = startManagerProcess(["--scheduler", scheduler.address]);
    // A slow seed stretches the download over a few seconds, so scrapes land mid-flight.
    seed = await startPeer(root, "seed", scheduler.address, ["--seed", "--upload-rate-limit", "8MiB"]);
    peers = await Promise.all(["a", "b", "c"].map((name) => startPeer(root, name, scheduler.address, name === "a" ? ["--log-level", "debug"] : [])));
    manager = await managerStarting;
    managerPort = portOf(manager.started, "rest");
    await waitForHosts(scheduler.address, 4);
  });

  after(async () => {
    await Promise.all([seed, ...(peers ?? [])].map((d) => d?.stop()));
    await manager?.stop();
    await scheduler?.stop();
    await origin?.close();
    await rm(root, { recursive: true, force: true });
  });

  async function snapshot(): Promise<Snapshot> {
    const schedulerSamples = await scrape(scheduler.metricsPort);
    const daemonSamples = new Map(await Promise.all(daemons().map(async (d) => [d.name, await scrape(d.ports.metrics)] as const)));
    const originBytes = origin.bytesSent;
    return { scheduler: schedulerSamples, daemons: daemonSamples, manager: await scrape(managerPort), originBytes };
  }

  const peerDownloads = (s: Snapshot): number =>
    sumOf(peers.map((p) => value(s.daemons.get(p.name)!, "lacewing_dfdaemon_download_bytes_total", { source: "peer" })));
  const uploads = (s: Snapshot): number => sumOf([...s.daemons.values()].map((d) => value(d, "lacewing_dfdaemon_upload_bytes_total")));
  const daemonSum = (s: Snapshot, name: string, labels: Record<string, string> = {}): number =>
    sumOf([...s.daemons.values()].map((d) => value(d, name, labels)));

  it("every process answers /healthz and /readyz with 200", async () => {
    const ports = { scheduler: scheduler.metricsPort, manager: managerPort, ...Object.fromEntries(daemons().map((d) => [d.name, d.ports.metrics])) };
    for (const [name, port] of Object.entries(ports)) {
      for (const path of ["/healthz", "/readyz"]) assert.equal((await fetch(`http://127.0.0.1:${port}${path}`)).status, 200, `${name} ${path}`);
      const samples = await scrape(port);
      assert.ok(
        samples.some((s) => s.name.startsWith("lacewing_")),
        `${name} serves lacewing_ metrics`,
      );
      assert.ok(
        samples.every((s) => s.name.startsWith("lacewing_")),
        `${name} serves only lacewing_ metrics: ${samples.find((s) => !s.name.startsWith("lacewing_"))?.name ?? ""}`,
      );
    }
  });

  it("counters only grow and never run ahead of their source mid-flight; afterwards the bytes agree across processes", async (t) => {
    const url = origin.url("/blob.bin");
    // What the processes had counted before this download: the figures below are what it added.
    const start = await snapshot();
    const running = Promise.all(peers.map((p) => dfget(p, url, join(root, `${p.name}.out`), "--piece-length", "1MiB")));
    let done = false;
    void running.finally(() => (done = true));

    const snapshots: Snapshot[] = [start];
    let midFlight = 0;
    while (!done) {
      // The scrape interval: this loop samples the counters while the download runs, it waits for nothing.
      await sleep(100);
      const previous = snapshots.at(-1)!;
      const current = await snapshot();
      snapshots.push(current);
      // Counters never go down.
      for (const [process, samples] of byProcess(current)) {
        const before = new Map((byProcess(previous).get(process) ?? []).filter(isMonotonic).map((s) => [key(s), s.value]));
        for (const sample of samples) {
          const was = before.get(key(sample));
          if (was !== undefined) assert.ok(sample.value >= was, `${process}: ${key(sample)} went from ${was} to ${sample.value}`);
        }
      }
      // A piece is counted as uploaded when the parent reads it, as downloaded once the child stored it:
      // downloads seen now cannot exceed uploads seen later.
      assert.ok(peerDownloads(previous) <= uploads(current), `downloaded ${peerDownloads(previous)} > uploaded ${uploads(current)}`);
      // The scheduler hears of a piece after the daemon counted it (it was scraped first).
      assert.ok(value(current.scheduler, "lacewing_scheduler_traffic_bytes_total", { type: "peer" }) <= peerDownloads(current));
      assert.ok(
        value(current.scheduler, "lacewing_scheduler_traffic_bytes_total", { type: "back_to_source" }) <=
          daemonSum(current, "lacewing_dfdaemon_download_bytes_total", { source: "origin" }),
      );
      // The origin counts a byte when it sends it (the seed's 1-byte probe first), the seed when it stored it.
      const seedOrigin = value(current.daemons.get("seed")!, "lacewing_dfdaemon_download_bytes_total", { source: "origin" });
      assert.ok(seedOrigin <= Math.max(0, current.originBytes - 1), `seed stored ${seedOrigin} origin bytes, origin sent ${current.originBytes}`);
      const got = peerDownloads(current) - peerDownloads(start);
      if (got > 0 && got < 3 * BLOB) midFlight++;
    }
    const results = await running;
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    assert.ok(midFlight > 0, `no scrape landed while the download ran (${snapshots.length} snapshots)`);
    t.diagnostic(`${snapshots.length} scrapes of all 6 processes while the download ran, ${midFlight} of them mid-flight`);

    // How much `of` grew from the start to `s`, and the series it reads (a scheduler's, one daemon's, all daemons' summed).
    const grew = (s: Snapshot, of: (s: Snapshot) => number): number => of(s) - of(start);
    const atScheduler =
      (name: string, labels: Record<string, string> = {}) =>
      (s: Snapshot): number =>
        value(s.scheduler, name, labels);
    const atDaemon =
      (daemon: string, name: string, labels: Record<string, string> = {}) =>
      (s: Snapshot): number =>
        value(s.daemons.get(daemon)!, name, labels);
    const overDaemons =
      (name: string, labels: Record<string, string> = {}) =>
      (s: Snapshot): number =>
        daemonSum(s, name, labels);
    const originOf = (s: Snapshot): number => s.originBytes;

    // The last piece reports reach the scheduler asynchronously.
    let last = await snapshot();
    const traffic = (s: Snapshot): number =>
      sumOf(["peer", "back_to_source"].map((type) => value(s.scheduler, "lacewing_scheduler_traffic_bytes_total", { type })));
    await waitUntil(
      "the scheduler has every piece report and four succeeded peers",
      async () => {
        last = await snapshot();
        return grew(last, traffic) >= 4 * BLOB && grew(last, atScheduler("lacewing_scheduler_peers", { state: "succeeded" })) === 4;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );

    // Peers ↔ peers: every byte downloaded from a parent was uploaded by one.
    const perDaemon = (): string =>
      daemons()
        .map((d) => {
          const of = (name: string, labels: Record<string, string> = {}): number => grew(last, atDaemon(d.name, name, labels));
          const failures = last.daemons.get(d.name)!.filter((s) => /piece_failures_total|endgame_requests_total/.test(s.name) && s.value > 0);
          return `${d.name}: from peers ${of("lacewing_dfdaemon_download_bytes_total", { source: "peer" })}, uploaded ${of("lacewing_dfdaemon_upload_bytes_total")}, ${failures.map((s) => `${key(s)}=${s.value}`).join(" ")}`;
        })
        .join("; ");
    assert.equal(grew(last, peerDownloads), 3 * BLOB, perDaemon());
    // A parent counts what it sent; a child drops the slower copy of a piece it asked of two parents at the end (endgame): at most a piece per race.
    const wasted = grew(last, uploads) - grew(last, peerDownloads);
    const races = grew(last, overDaemons("lacewing_dfdaemon_endgame_requests_total"));
    assert.ok(wasted >= 0 && wasted <= races * MiB, `uploaded ${wasted} B more than downloaded in ${races} endgame races: ${perDaemon()}`);
    const fromOrigin = overDaemons("lacewing_dfdaemon_download_bytes_total", { source: "origin" });
    assert.equal(grew(last, fromOrigin), BLOB, "only the seed went to the origin");
    // Origin: its own count, less the seed's 1-byte probe.
    assert.equal(grew(last, atDaemon("seed", "lacewing_dfdaemon_download_bytes_total", { source: "origin" })), grew(last, originOf) - 1);
    // Scheduler: the same split of the traffic.
    assert.equal(grew(last, atScheduler("lacewing_scheduler_traffic_bytes_total", { type: "peer" })), grew(last, peerDownloads));
    assert.equal(grew(last, atScheduler("lacewing_scheduler_traffic_bytes_total", { type: "back_to_source" })), grew(last, fromOrigin));
    assert.equal(grew(last, atScheduler("lacewing_scheduler_piece_reports_total", { result: "finished" })), 4 * PIECES);
    // Back-to-source: one decision (the seed), one daemon that acted on it.
    assert.equal(grew(last, atScheduler("lacewing_scheduler_back_to_source_total")), 1);
    assert.equal(grew(last, atScheduler("lacewing_scheduler_back_to_source_total", { reason: "seed" })), 1);
    assert.equal(grew(last, overDaemons("lacewing_dfdaemon_back_to_source_total")), 1);
    assert.equal(grew(last, atDaemon("seed", "lacewing_dfdaemon_back_to_source_total", { reason: "scheduler" })), 1);
    // Registered peers and hosts.
    assert.equal(grew(last, atScheduler("lacewing_scheduler_peer_registrations_total", { kind: "download" })), 4);
    assert.equal(grew(last, atScheduler("lacewing_scheduler_peers", { state: "succeeded" })), 4);
    assert.equal(value(last.scheduler, "lacewing_scheduler_hosts", { type: "seed" }), 1);
    assert.equal(value(last.scheduler, "lacewing_scheduler_hosts", { type: "normal" }), 3);
    assert.equal(grew(last, atScheduler("lacewing_scheduler_tasks")), 1);
    assert.ok(grew(last, atScheduler("lacewing_scheduler_schedule_duration_seconds_count")) >= 4);
    // Each daemon: one more finished task, its bytes in the cache, one successful download, every piece timed.
    for (const daemon of daemons()) {
      const of = (name: string, labels: Record<string, string> = {}): number => grew(last, atDaemon(daemon.name, name, labels));
      assert.equal(of("lacewing_dfdaemon_tasks", { state: "finished" }), 1, daemon.name);
      assert.equal(of("lacewing_dfdaemon_cache_bytes"), BLOB, daemon.name);
      assert.equal(of("lacewing_dfdaemon_downloads_total", { result: "succeeded" }), 1, daemon.name);
      const source = daemon === seed ? "origin" : "peer";
      assert.equal(of("lacewing_dfdaemon_piece_duration_seconds_count", { source }), PIECES, `${daemon.name} timed every piece`);
      assert.equal(of("lacewing_dfdaemon_piece_failures_total"), 0, daemon.name);
    }
    // What dfget reported is what the daemon counted.
    for (const [i, peer] of peers.entries()) {
      const report = JSON.parse(results[i]!.stdout) as { traffic: { peers: number; origin: number } };
      assert.equal(report.traffic.peers, grew(last, atDaemon(peer.name, "lacewing_dfdaemon_download_bytes_total", { source: "peer" })), peer.name);
    }

    t.diagnostic(
      `origin sent ${grew(last, originOf)} B; seed from origin ${grew(last, atDaemon("seed", "lacewing_dfdaemon_download_bytes_total", { source: "origin" }))} B; ` +
        `peers from peers ${grew(last, peerDownloads)} B; uploaded ${grew(last, uploads)} B (seed ${grew(last, atDaemon("seed", "lacewing_dfdaemon_upload_bytes_total"))} B)`,
    );

    // The dashboard's label filters select series that real processes export.
    const exported = [last.scheduler, ...last.daemons.values(), last.manager].flat();
    for (const { panel, expr } of dashboardQueries()) {
      for (const { name, matchers } of selectorsIn(expr)) {
        const selected = exported.filter((s) => s.name === name && matchers.every((m) => matches(m, s.labels[m.label])));
        if (matchers.length > 0 && name !== "lacewing_dfdaemon_proxy_requests_total")
          assert.ok(selected.length > 0, `panel "${panel}": ${name}{${matchers.map((m) => `${m.label}${m.op}"${m.value}"`).join(",")}} selects nothing`);
      }
    }
  });

  it("the daemon's download logs carry taskId and peerId as fields, not in the message", async () => {
    const [a] = peers;
    // Its own file, so a P2P download of it is logged at debug whatever ran before.
    const result = await dfget(a!, origin.url("/logged.bin"), join(root, "logged.out"));
    assert.equal(result.code, 0, result.stderr);
    const lines = a!
      .output()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const taskId = taskIdOf({ url: origin.url("/logged.bin") });
    const about = lines.filter((line) => line["taskId"] === taskId);
    assert.ok(about.length > 0, `debug logs mention the task: ${a!.output().slice(0, 3000)}`);
    const parents = about.filter((line) => line["msg"] === "parents");
    assert.ok(parents.length > 0, "the parents a download used are logged");
    for (const line of parents) assert.match(String(line["peerId"]), /\S+/, "peerId field");
    for (const line of lines) assert.ok(!String(line["msg"]).includes(taskId), `task id inside a message: ${String(line["msg"])}`);
  });

  it("a preheat through the manager shows in its job metrics and in the seed's and the origin's byte counts", async () => {
    const managerBefore = await scrape(managerPort);
    const seedBefore = value(await scrape(seed.ports.metrics), "lacewing_dfdaemon_download_bytes_total", { source: "origin" });
    const seedDecisions = async (): Promise<number> =>
      value(await scrape(scheduler.metricsPort), "lacewing_scheduler_back_to_source_total", { reason: "seed" });
    const decisionsBefore = await seedDecisions();
    const originBefore = origin.bytesSent;
    const created = await manager.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: origin.url("/preheat.bin") } });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const job = await manager.waitForJob(created.body["id"] as string, 20_000);
    assert.equal(job.state, "succeeded", job.error);

    const samples = await scrape(managerPort);
    const grew = (name: string, labels: Record<string, string> = {}): number => value(samples, name, labels) - value(managerBefore, name, labels);
    assert.equal(grew("lacewing_manager_jobs", { state: "succeeded" }), 1);
    assert.equal(grew("lacewing_manager_jobs"), 1);
    assert.equal(grew("lacewing_manager_jobs_total", { state: "pending" }), 1, "created");
    assert.equal(grew("lacewing_manager_jobs_total", { state: "succeeded" }), 1, "finished");
    assert.equal(value(await scrape(seed.ports.metrics), "lacewing_dfdaemon_download_bytes_total", { source: "origin" }) - seedBefore, PREHEAT);
    assert.equal(origin.bytesSent - originBefore, PREHEAT + 1, "the preheated file plus the probe byte");
    assert.equal((await seedDecisions()) - decisionsBefore, 1, "one seed download decided by the scheduler");
  });
});
