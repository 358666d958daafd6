// Benchmark (not a test): N peer hosts fetch the same model directory (20
// files, 4 GiB by default) from an S3 bucket (s3rver on the origin host) over
// capped links: each reading the bucket directly with the AWS SDK, then
// `dfget -r` through a scheduler and a seed peer, in one run. Needs root.
//   npm run bench:model-dir -- [--peers 8] [--rate 1000] [--files 20] [--mib 4096] [--scenarios direct,p2p] [--dir DIR] [--keep]
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { BIN } from "../helpers/processes.js";
import { childCpuSeconds, curlFrom, machineCpu, startDfdaemon, startInHost, startScheduler, type HostProcess } from "../testbed/cluster.js";
import { Network, removeOwnNetwork } from "../testbed/netns.js";
import { testbedUnavailable } from "../testbed/testbed.js";

const { values } = parseArgs({
  options: {
    peers: { type: "string", default: "8" },
    rate: { type: "string", default: "1000" },
    files: { type: "string", default: "20" },
    mib: { type: "string", default: "4096" },
    scenarios: { type: "string", default: "direct,p2p" },
    "max-concurrent": { type: "string", default: "4" },
    dir: { type: "string" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(`usage: npm run bench:model-dir -- [--peers N] [--rate MBIT] [--files N] [--mib MIB] [--scenarios direct,p2p] [--max-concurrent N] [--dir DIR] [--keep]
  direct: every peer host reads the whole prefix from the bucket with the AWS SDK (--max-concurrent objects at once)
  p2p:    every peer host runs dfget -r s3://BUCKET/PREFIX/ through its dfdaemon (scheduler + one seed peer)`);
  process.exit(0);
}
const scenarios = values.scenarios.split(",").map((s) => s.trim());
for (const s of scenarios) if (s !== "direct" && s !== "p2p") throw new Error(`unknown scenario ${s}; known: direct, p2p`);
const unavailable = await testbedUnavailable();
if (unavailable !== undefined) {
  console.error(`model-dir: ${unavailable}`);
  process.exit(2);
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BUCKET = "models";
const PREFIX = "model/";
const S3_PORT = 9000;
const STATS_PORT = 9001;
const peers = Number(values.peers);
const rateMbit = Number(values.rate);
const log = (line: string): void => console.error(`[model-dir] ${line}`);
const here = dirname(fileURLToPath(import.meta.url));

interface ScenarioResult {
  scenario: string;
  secondsToLastPeer: number;
  originBytes: number;
  cpuPerGiBPerPeer: number;
  busy: number;
  traffic?: { origin: number; peers: number; cache: number };
}

const runDir = await mkdtemp(join(values.dir ?? tmpdir(), "lacewing-model-dir-"));
const names = ["origin", "scheduler", "seed", ...Array.from({ length: peers }, (_, i) => `peer${i + 1}`)];
let network: Network | undefined;
const running = new Set<HostProcess>();
const results: ScenarioResult[] = [];
let files: Array<{ key: string; size: number; sha256: string }> = [];
try {
  network = await Network.create({ hosts: names, rateMbit });
  const origin = network.host("origin");
  const endpoint = `http://${origin.ip}:${S3_PORT}`;
  log(`filling the bucket: ${values.files} files, ${values.mib} MiB`);
  const s3 = await startInHost(
    origin,
    "s3-origin",
    process.execPath,
    [
      join(here, "../testbed/s3-origin.js"),
      "--port",
      String(S3_PORT),
      "--stats-port",
      String(STATS_PORT),
      "--bucket",
      BUCKET,
      "--prefix",
      PREFIX,
      "--files",
      values.files,
      "--mib",
      values.mib,
    ],
    runDir,
  );
  running.add(s3);
  for (;;) {
    const text = await readFile(s3.logFile, "utf8").catch(() => "");
    const ready = text.split("\n").find((line) => line.startsWith('{"ready"'));
    if (ready !== undefined) {
      const announced = JSON.parse(ready) as { files: typeof files; env: Record<string, string> };
      files = announced.files;
      // Every process started from here inherits the AWS conventions dfget and the SDK read, the endpoint on the origin host.
      Object.assign(process.env, announced.env, { AWS_ENDPOINT_URL_S3: endpoint });
      break;
    }
    if (s3.child.exitCode !== null) throw new Error(`s3-origin exited: ${await s3.tail()}`);
    await sleep(200);
  }
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const originBytes = async (): Promise<number> =>
    (JSON.parse((await curlFrom(origin, `http://${origin.ip}:${STATS_PORT}/`)) ?? '{"bytes":NaN}') as { bytes: number }).bytes;
  const peerHosts = Array.from({ length: peers }, (_, i) => network!.host(`peer${i + 1}`));

  for (const scenario of scenarios) {
    const dir = join(runDir, scenario);
    await mkdir(dir, { recursive: true });
    const daemons = new Map<string, { socket: string }>();
    if (scenario === "p2p") {
      const scheduler = await startScheduler(network.host("scheduler"), join(dir, "scheduler"));
      running.add(scheduler);
      running.add(await startDfdaemon(network.host("seed"), join(dir, "seed"), { scheduler: scheduler.address, seed: true }));
      for (const host of peerHosts) {
        const daemon = await startDfdaemon(host, join(dir, host.name), { scheduler: scheduler.address });
        running.add(daemon);
        daemons.set(host.name, daemon);
      }
      for (let i = 0; i < 100; i++) {
        const hosts = await scheduler.hosts();
        if (hosts !== undefined && hosts.seed >= 1 && hosts.normal >= peers) break;
        await sleep(100);
      }
    }
    const processes = [...running];
    const cpuBefore = await Promise.all(processes.map((p) => p.cpuSeconds()));
    const machineBefore = await machineCpu();
    const originBefore = await originBytes();
    log(`${scenario}: ${peers} peers fetch s3://${BUCKET}/${PREFIX} at once`);
    const started = performance.now();
    const outputs = await Promise.all(
      peerHosts.map(async (host) => {
        const out = join(dir, host.name, "out");
        const args =
          scenario === "direct"
            ? [join(here, "../testbed/s3-direct-read.js"), `s3://${BUCKET}/${PREFIX}`, out, "--max-concurrent", values["max-concurrent"]]
            : [
                BIN.dfget,
                "-r",
                `s3://${BUCKET}/${PREFIX}`,
                "-O",
                out,
                "--socket",
                daemons.get(host.name)!.socket,
                "--no-progress",
                "--json",
                "--max-concurrent",
                values["max-concurrent"],
              ];
        await mkdir(join(dir, host.name), { recursive: true });
        const { result, cpuSeconds } = await childCpuSeconds(host, process.execPath, args, join(dir, host.name, "client.stat"));
        if (result.code !== 0) throw new Error(`${scenario}: ${host.name} exited ${result.code}: ${result.stderr.trim().slice(-2000)}`);
        return { host, out, cpuSeconds, seconds: (performance.now() - started) / 1000, stdout: result.stdout };
      }),
    );
    const secondsToLastPeer = Math.max(...outputs.map((o) => o.seconds));
    const machineAfter = await machineCpu();
    const cpuAfter = await Promise.all(processes.map((p) => p.cpuSeconds()));
    const sent = (await originBytes()) - originBefore;
    // Every process of a peer host: its daemon (p2p) and its client, per GiB the host received.
    const perPeer = peerHosts.map((host) => {
      const daemonSeconds = processes.reduce((n, p, i) => (p.host.name === host.name ? n + cpuAfter[i]! - cpuBefore[i]! : n), 0);
      return (daemonSeconds + outputs.find((o) => o.host === host)!.cpuSeconds) / (totalBytes / GiB);
    });
    let traffic: ScenarioResult["traffic"];
    if (scenario === "p2p") {
      traffic = { origin: 0, peers: 0, cache: 0 };
      for (const o of outputs) {
        const report = JSON.parse(o.stdout) as { files?: Array<{ traffic?: { origin: number; peers: number; cache: number } }> };
        for (const f of report.files ?? []) {
          traffic.origin += f.traffic?.origin ?? 0;
          traffic.peers += f.traffic?.peers ?? 0;
          traffic.cache += f.traffic?.cache ?? 0;
        }
      }
    }
    await verify(outputs.map((o) => o.out));
    results.push({
      scenario,
      secondsToLastPeer,
      originBytes: sent,
      cpuPerGiBPerPeer: perPeer.reduce((a, b) => a + b, 0) / perPeer.length,
      busy: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
      ...(traffic === undefined ? {} : { traffic }),
    });
    log(`${scenario}: last peer after ${secondsToLastPeer.toFixed(2)} s, the bucket sent ${(sent / MiB).toFixed(0)} MiB`);
    await Promise.all(processes.filter((p) => p !== s3).map((p) => (running.delete(p), p.stop())));
    if (!values.keep) await rm(dir, { recursive: true, force: true });
  }

  const lowerBound = (totalBytes * 8) / (rateMbit * 1e6);
  console.log(
    `\n${peers} peers, ${rateMbit} Mbit/s uplink per host, ${files.length} files, ${(totalBytes / MiB).toFixed(0)} MiB; ` +
      `F/U = ${lowerBound.toFixed(2)} s (the bucket's uplink carries every byte at least once)`,
  );
  console.log(`machine: ${cpus().length} cores, load average (1 min) ${loadavg()[0]!.toFixed(1)} after the run\n`);
  const header = ["scenario", "s to last peer", "× F/U", "bucket MiB", "bucket / data", "CPU-s/GiB per peer host", "machine busy"];
  const rows = results.map((r) => [
    r.scenario === "direct" ? "each peer reads the bucket (AWS SDK)" : "dfget -r through Lacewing",
    r.secondsToLastPeer.toFixed(2),
    (r.secondsToLastPeer / lowerBound).toFixed(2),
    (r.originBytes / MiB).toFixed(0),
    (r.originBytes / totalBytes).toFixed(3),
    r.cpuPerGiBPerPeer.toFixed(1),
    `${(r.busy * 100).toFixed(0)} %`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
  for (const r of results)
    if (r.traffic !== undefined)
      console.log(
        `\n${r.scenario}: peers got MiB from origin ${(r.traffic.origin / MiB).toFixed(0)}, from peers ${(r.traffic.peers / MiB).toFixed(0)}, from cache ${(r.traffic.cache / MiB).toFixed(0)}`,
      );
  const direct = results.find((r) => r.scenario === "direct");
  const p2p = results.find((r) => r.scenario === "p2p");
  if (direct !== undefined && p2p !== undefined)
    console.log(
      `\nto the last peer: direct reads ${direct.secondsToLastPeer.toFixed(2)} s, dfget -r ${p2p.secondsToLastPeer.toFixed(2)} s ` +
        `(direct / dfget -r = ${(direct.secondsToLastPeer / p2p.secondsToLastPeer).toFixed(2)}); the bucket sent ${(direct.originBytes / p2p.originBytes).toFixed(1)} × less with dfget -r`,
    );
} catch (error) {
  console.error(`model-dir failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await Promise.all([...running].map((p) => p.stop()));
  await network?.close().catch(() => undefined);
  await removeOwnNetwork().catch(() => undefined);
  if (!values.keep) await rm(runDir, { recursive: true, force: true });
}

/** Every peer's copy of every file has the bytes the bucket was filled with. */
async function verify(outs: string[]): Promise<void> {
  for (const out of outs)
    for (const file of files) {
      const hash = createHash("sha256");
      for await (const chunk of createReadStream(join(out, file.key.slice(PREFIX.length)))) hash.update(chunk as Buffer);
      if (hash.digest("hex") !== file.sha256) throw new Error(`${out}: ${file.key} differs from the bucket's`);
    }
}
