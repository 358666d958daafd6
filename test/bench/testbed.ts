// Benchmark (not a test): N peer hosts dfget the same blob at once over
// capped links, P2P against straight-from-origin, in one run. Needs root.
//   npm run bench:testbed -- [--peers 8] [--rate 200] [--size 128] [--scenarios link,p2p,origin] [--dir DIR] [--keep]
//   npm run bench:testbed -- --scenarios p2p,p2p-kill,p2p-cut    (a serving peer taken away mid-transfer)
//   npm run bench:testbed -- --zones [--inter-zone MBIT]          (two zones: isolation, affinity, a seed per zone)
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { hasCommand } from "../testbed/command.js";
import { removeOwnNetwork } from "../testbed/netns.js";
import { SCENARIOS, Testbed, testbedUnavailable, type ScenarioName, type ScenarioResult } from "../testbed/testbed.js";

const { values } = parseArgs({
  options: {
    peers: { type: "string", default: "8" },
    rate: { type: "string", default: "200" },
    size: { type: "string", default: "128" },
    scenarios: { type: "string" },
    dir: { type: "string" },
    keep: { type: "boolean", default: false },
    "seed-args": { type: "string", default: "" },
    "peer-args": { type: "string", default: "" },
    "dfget-args": { type: "string", default: "" },
    timeline: { type: "boolean", default: false },
    zones: { type: "boolean", default: false },
    "inter-zone": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(`usage: npm run bench:testbed -- [--peers N] [--rate MBIT] [--size MIB] [--scenarios ${Object.keys(SCENARIOS).join(",")}] [--dir DIR] [--keep]
  --peers N      peer hosts downloading at once (default 8)
  --rate MBIT    uplink cap of every host in Mbit/s (default 200)
  --size MIB     blob size in MiB (default 128)
  --scenarios    which to run, in order (default link,p2p,bittorrent,origin)
  --dir DIR      where the blob, daemon data and logs go (default the system temp dir)
  --keep         keep that directory (daemon logs) after the run
  --seed-args=…  extra dfdaemon flags for the seed peer, e.g. --seed-args='--upload-limit 8' (p2p)
  --peer-args=…  extra dfdaemon flags for the peers' daemons in the p2p scenario
  --dfget-args=… extra dfget flags for every download, e.g. --dfget-args='--piece-length 1MiB'
  --timeline     print each daemon's cached and served MiB once a second during the downloads
  --zones        two zones (half the peers each, a router between them, counted): runs a one-zone p2p run
                 first, then the zone scenarios (default zones-isolation,zones-affinity,zones-affinity-once,zones-affinity-seeds)
  --inter-zone MBIT  cap of the router's link into each zone (default: --rate)`);
  process.exit(0);
}
const scenarios = (
  values.scenarios ?? (values.zones ? "zones-isolation,zones-affinity,zones-affinity-once,zones-affinity-seeds" : "link,p2p,bittorrent,origin")
)
  .split(",")
  .map((s) => s.trim()) as ScenarioName[];
for (const s of scenarios) if (!(s in SCENARIOS)) throw new Error(`unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(", ")}`);
if (scenarios.includes("bittorrent"))
  for (const [tool, pkg] of [
    ["aria2c", "aria2"],
    ["opentracker", "opentracker"],
    ["mktorrent", "mktorrent"],
  ] as const)
    if (!(await hasCommand(tool))) {
      console.error(`testbed: the bittorrent scenario needs ${tool} (apt-get install ${pkg}), or leave it out with --scenarios link,p2p,origin`);
      process.exit(2);
    }
const unavailable = await testbedUnavailable();
if (unavailable !== undefined) {
  console.error(`testbed: ${unavailable} (run as root with iproute2, nginx and curl installed)`);
  process.exit(2);
}

let testbed: Testbed | undefined;
let cleanup: Promise<void> | undefined;
/** Every exit path goes through here; a second caller (a signal during a failure) waits for the same cleanup. */
async function shutdown(code: number): Promise<never> {
  cleanup ??= (async () => {
    await testbed?.close().catch(() => undefined);
    await removeOwnNetwork().catch(() => undefined);
  })();
  await cleanup;
  process.exit(code);
}
// Ctrl-C reaches the whole process group, so the daemons and dfgets see it too; the testbed is removed either way.
let interrupted = false;
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`testbed: ${signal}, removing the testbed`);
    void shutdown(code);
  });
}

const log = (line: string): void => console.error(`[testbed] ${line}`);
// Other work on the machine competes with the testbed's processes for the same cores; print it with the figures.
const loadBefore = loadavg()[0]!;
const results: ScenarioResult[] = [];
try {
  const common = {
    peers: Number(values.peers),
    rateMbit: Number(values.rate),
    sizeMiB: Number(values.size),
    keep: values.keep,
    seedArgs: values["seed-args"].split(" ").filter(Boolean),
    peerArgs: values["peer-args"].split(" ").filter(Boolean),
    dfgetArgs: values["dfget-args"].split(" ").filter(Boolean),
    timelineMs: values.timeline ? 1000 : 0,
    // Past 2 × the daemons' 10 s announce interval and the scheduler's 5 s GC.
    watchSchedulerDropMs: 40_000,
    log,
    ...(values.dir === undefined ? {} : { dir: values.dir }),
  };
  if (values.zones) {
    // The same downloads in one zone first, for the time to compare with.
    testbed = await Testbed.start(common);
    const result = await testbed.run("p2p");
    log(`p2p (one zone): last peer after ${result.secondsToLastPeer.toFixed(2)} s`);
    results.push(result);
    await testbed.close();
  }
  testbed = await Testbed.start({
    ...common,
    ...(values.zones ? { zones: values["inter-zone"] === undefined ? {} : { interZoneMbit: Number(values["inter-zone"]) } } : {}),
  });
  for (const scenario of scenarios) {
    const result = await testbed.run(scenario);
    log(`${scenario}: last peer after ${result.secondsToLastPeer.toFixed(2)} s, origin sent ${result.originBytes} bytes`);
    results.push(result);
  }
} catch (error) {
  // After a signal, a download failing is the cleanup at work, not news.
  if (!interrupted) console.error(`testbed failed: ${error instanceof Error ? error.message : String(error)}`);
  await shutdown(1);
}
await shutdownQuietly();

async function shutdownQuietly(): Promise<void> {
  cleanup ??= testbed?.close() ?? Promise.resolve();
  await cleanup;
}

const MiB = 1024 * 1024;
const first = results[0]!;
console.log(
  `\n${values.peers} peers, ${values.rate} Mbit/s uplink per host, ${Number(values.size)} MiB blob; ` +
    (values["seed-args"] || values["peer-args"] || values["dfget-args"]
      ? `seed args '${values["seed-args"]}', peer args '${values["peer-args"]}', dfget args '${values["dfget-args"]}'; `
      : "") +
    `F/U = ${first.lowerBoundSeconds.toFixed(2)} s (the origin's uplink carries every byte at least once)\n`,
);
console.log(`machine: ${cpus().length} cores, load average (1 min) ${loadBefore.toFixed(1)} before the run, ${loadavg()[0]!.toFixed(1)} after\n`);
const header = ["scenario", "s to last peer", "× F/U", "s from 1st request", "× F/U", "F/U s", "origin MiB", "origin / blob"];
const rows = results.map((r) => [
  SCENARIOS[r.scenario],
  r.secondsToLastPeer.toFixed(2),
  (r.secondsToLastPeer / r.lowerBoundSeconds).toFixed(2),
  r.secondsFromFirstRequest.toFixed(2),
  (r.secondsFromFirstRequest / r.lowerBoundSeconds).toFixed(2),
  r.lowerBoundSeconds.toFixed(2),
  (r.originBytes / MiB).toFixed(1),
  (r.originBytes / r.blobBytes).toFixed(3),
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of rows) console.log(line(row));

console.log("");
for (const r of results) {
  const byHost = Object.entries(r.originBytesByHost)
    .sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
    .map(([host, bytes]) => `${host} ${(bytes / MiB).toFixed(1)}`)
    .join(", ");
  console.log(`${r.scenario}: origin MiB by host: ${byHost || "none"}; ${r.originRequests} requests`);
  const reports = r.downloads.flatMap((d) => (d.report === undefined ? [] : [d.report]));
  if (reports.length > 0) {
    const sum = (pick: (t: (typeof reports)[number]["traffic"]) => number): string => (reports.reduce((n, x) => n + pick(x.traffic), 0) / MiB).toFixed(1);
    const elapsed = reports.map((x) => x.elapsedMs / 1000);
    console.log(
      `${r.scenario}: peers got MiB from origin ${sum((t) => t.origin)}, from peers ${sum((t) => t.peers)}, from cache ${sum((t) => t.cache)}; ` +
        `dfget's own elapsed ${Math.min(...elapsed).toFixed(2)}–${Math.max(...elapsed).toFixed(2)} s`,
    );
  }
  if (r.uploadBytesByHost !== undefined && Object.values(r.uploadBytesByHost).some((b) => b > 0)) {
    const uploads = Object.entries(r.uploadBytesByHost)
      .sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
      .map(([host, bytes]) => `${host} ${(bytes / MiB).toFixed(0)}`)
      .join(", ");
    console.log(`${r.scenario}: MiB served to other peers: ${uploads}`);
  }
  if (r.uploadBytesByHost !== undefined) {
    // No download can end before the busiest uplink has sent its bytes: when that bound is close to the time
    // measured, the limit is how the load was spread over the uplinks, not the CPU or the links.
    const sent = { origin: r.originBytes, ...r.uploadBytesByHost };
    const [host, bytes] = Object.entries(sent).sort(([, a], [, b]) => b - a)[0]!;
    const seconds = (bytes * 8) / (Number(values.rate) * 1e6);
    console.log(
      `${r.scenario}: busiest uplink: ${host} sent ${(bytes / MiB).toFixed(0)} MiB, ${seconds.toFixed(2)} s at ${values.rate} Mbit/s ` +
        `(${(seconds / r.lowerBoundSeconds).toFixed(2)} × F/U)`,
    );
  }
  if (r.pieceCounters !== undefined && Object.keys(r.pieceCounters).length > 0) {
    const counters = Object.entries(r.pieceCounters)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => `${key} ${value}`)
      .join(", ");
    console.log(`${r.scenario}: piece requests over all daemons: ${counters}`);
  }
  if (r.cpu !== undefined) {
    const top = Object.entries(r.cpu.secondsByProcess)
      .sort(([, a], [, b]) => b - a)
      .map(([name, seconds]) => `${name} ${seconds.toFixed(1)}`)
      .join(", ");
    console.log(`${r.scenario}: CPU ${(r.cpu.busy * 100).toFixed(0)} % busy of ${r.cpu.cores} cores during the downloads; CPU s by process: ${top}`);
    // Per GiB, so runs of different sizes and rates compare: every process of a peer host (daemon and client, or aria2c)
    // per GiB the host received, and the source's (the seed, or BitTorrent's seeder on the origin host) per GiB it sent.
    const blobGiB = r.blobBytes / 1024 ** 3;
    const byHost = new Map<string, number>();
    for (const [name, seconds] of Object.entries(r.cpu.secondsByProcess)) {
      const host = name.slice(0, name.indexOf("/"));
      if (/^peer\d+$/.test(host)) byHost.set(host, (byHost.get(host) ?? 0) + seconds);
    }
    const perPeer = [...byHost.values()].map((seconds) => seconds / blobGiB);
    if (perPeer.length > 0) {
      const mean = perPeer.reduce((a, b) => a + b, 0) / perPeer.length;
      const source =
        r.scenario === "bittorrent"
          ? { name: "origin/aria2c-seeder", sent: r.originBytes }
          : { name: "seed/seed-dfdaemon", sent: r.uploadBytesByHost?.["seed"] };
      const sourceSeconds = r.cpu.secondsByProcess[source.name];
      const sourceText =
        sourceSeconds !== undefined && source.sent !== undefined && source.sent > 0
          ? `; ${source.name.split("/")[1]} ${(sourceSeconds / (source.sent / 1024 ** 3)).toFixed(1)} CPU-s per GiB sent`
          : "";
      console.log(
        `${r.scenario}: peer hosts ${mean.toFixed(1)} CPU-s per GiB received (${Math.min(...perPeer).toFixed(1)}–${Math.max(...perPeer).toFixed(1)})${sourceText}`,
      );
    }
  }
  if (r.timeline !== undefined) {
    const names = Object.keys(r.timeline[0]?.hosts ?? {});
    console.log(`${r.scenario}: timeline, MiB cached / MiB served to peers per daemon`);
    console.log(["     s", ...names.map((n) => n.padStart(11))].join(" "));
    for (const point of r.timeline) {
      const cells = names.map((n) => {
        const h = point.hosts[n]!;
        return `${(h.cached / MiB).toFixed(0)}/${(h.uploaded / MiB).toFixed(0)}`.padStart(11);
      });
      console.log([point.seconds.toFixed(1).padStart(6), ...cells].join(" "));
    }
  }
  if (r.crossZone !== undefined) {
    const z = r.crossZone;
    console.log(
      `${r.scenario}: crossed the zones: ${(z.pieces / MiB).toFixed(1)} MiB of pieces (${(z.pieces / r.blobBytes).toFixed(2)} × blob), ` +
        `${(z.total / MiB).toFixed(1)} MiB in all (the origin's ${(z.originToZoneB / MiB).toFixed(1)} MiB to zone b, and control traffic)`,
    );
  }
  if (r.fault !== undefined) {
    const f = r.fault;
    const seconds = (value: number | undefined): string => (value === undefined ? "never, before the last download ended" : `${value.toFixed(2)} s`);
    const baseline = results.find((other) => other.scenario === "p2p");
    console.log(
      `${r.scenario}: ${f.kind === "kill" ? "killed the daemon of" : "cut the link of"} ${f.host} ${f.atSeconds.toFixed(2)} s after launch, ` +
        `when it had served ${(f.servedBytes / MiB).toFixed(1)} MiB; the others' first failed piece request after ${seconds(f.piecesMovedSeconds)}; ` +
        `the scheduler dropped the host after ${seconds(f.schedulerDroppedSeconds)}` +
        (baseline === undefined
          ? ""
          : `; the last of the other peers ${(r.secondsToLastPeer - baseline.secondsToLastPeer).toFixed(2)} s later than in the p2p run without a fault`),
    );
  }
  if (r.announced === false) console.log(`${r.scenario}: the dfdaemons never announced to the scheduler (no P2P in this build?)`);
}
const p2p = results.find((r) => r.scenario === "p2p");
if (p2p !== undefined) {
  const verdict = (ratio: number, limit: number): string => `${ratio.toFixed(2)} (≤ ${limit}: ${ratio <= limit ? "met" : "missed"})`;
  console.log(
    `\np2p targets: time to last peer ${verdict(p2p.secondsToLastPeer / p2p.lowerBoundSeconds, 1.3)} × F/U from launch, ` +
      `${verdict(p2p.secondsFromFirstRequest / p2p.lowerBoundSeconds, 1.3)} from the first request; ` +
      `origin bytes ${verdict(p2p.originBytes / p2p.blobBytes, 1.05)} × blob`,
  );
}
