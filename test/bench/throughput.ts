// Benchmark (not a test): one node, no scheduler. dfget through a dfdaemon
// against curl, both pulling the same on-disk file from the same nginx
// (sendfile) in the same run, plus the daemon's peak memory for one large
// download and for many at once. Needs root (the node is a network
// namespace, so nothing else on the machine shares its loopback).
//   npm run bench:throughput -- [--size-mib 4096] [--runs 3] [--rss-mib 1024,8192] [--concurrent 20] [--concurrent-mib 256]
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { randomFillSync } from "node:crypto";
import { parseArgs } from "node:util";
import { BIN } from "../helpers/processes.js";
import { childCpuSeconds, NginxOrigin, startDfdaemon, type DfdaemonProcess } from "../testbed/cluster.js";
import { Network, removeOwnNetwork, type Host } from "../testbed/netns.js";
import { testbedUnavailable } from "../testbed/testbed.js";

const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "4096" },
    runs: { type: "string", default: "3" },
    "rss-mib": { type: "string", default: "1024,8192" },
    concurrent: { type: "string", default: "20" },
    "concurrent-mib": { type: "string", default: "256" },
    "daemon-args": { type: "string", default: "" },
    dir: { type: "string" },
  },
});
const MiB = 1024 * 1024;
const sizeMiB = Number(values["size-mib"]);
const runs = Number(values.runs);
const rssSizes = values["rss-mib"] === "" ? [] : values["rss-mib"].split(",").map(Number);
const concurrent = Number(values.concurrent);
const concurrentMiB = Number(values["concurrent-mib"]);
const daemonArgs = values["daemon-args"] === "" ? [] : values["daemon-args"].split(" ");

const unavailable = await testbedUnavailable();
if (unavailable !== undefined) {
  console.error(`throughput: ${unavailable} (run as root with iproute2, nginx and curl installed)`);
  process.exit(2);
}

/** Writes `mib` MiB of incompressible bytes (one random MiB repeated would let nothing dedupe; each MiB is fresh). */
async function writeRandomFile(path: string, mib: number): Promise<void> {
  const chunk = Buffer.allocUnsafe(MiB);
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < mib; i++) yield randomFillSync(chunk);
      })(),
      { objectMode: false },
    ),
    createWriteStream(path),
  );
}

/** Peak resident set of a process (VmHWM), in MiB. */
async function peakRssMiB(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), "lacewing-throughput-")));
let network: Network | undefined;
let origin: NginxOrigin | undefined;
let daemon: DfdaemonProcess | undefined;
let daemonCount = 0;

async function freshDaemon(host: Host): Promise<DfdaemonProcess> {
  await daemon?.stop();
  daemonCount++;
  const daemonDir = join(dir, `daemon-${daemonCount}`);
  await rm(join(dir, `daemon-${daemonCount - 1}`), { recursive: true, force: true });
  daemon = await startDfdaemon(host, daemonDir, { extraArgs: daemonArgs });
  return daemon;
}

/** Runs one command in the node and returns its wall seconds and CPU seconds. */
async function timedInHost(host: Host, command: string, args: string[], statName: string): Promise<{ seconds: number; cpu: number }> {
  const started = performance.now();
  const { result, cpuSeconds } = await childCpuSeconds(host, command, args, join(dir, `${statName}.stat`));
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  return { seconds: (performance.now() - started) / 1000, cpu: cpuSeconds };
}

function dfgetArgs(d: DfdaemonProcess, url: string, output: string): string[] {
  return [BIN.dfget, url, "-O", output, "--socket", d.socket, "--no-progress"];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 2): string => n.toFixed(digits);

try {
  network = await Network.create({ hosts: ["node"], rateMbit: 100_000 });
  const host = network.host("node");
  origin = new NginxOrigin(host, join(dir, "origin"));
  await origin.start();
  const out = join(dir, "out");
  await mkdir(out, { recursive: true });
  const sizes = [...new Set([sizeMiB, ...rssSizes, concurrentMiB])];
  for (const mib of sizes) await writeRandomFile(join(origin.root, `${mib}.bin`), mib);
  console.log(`node: nginx (sendfile) and dfdaemon in one network namespace; files ${sizes.map((s) => `${s} MiB`).join(", ")} on disk`);

  // 1. Throughput, curl against dfget, alternating, each dfget on a fresh daemon (cold cache).
  const rows: Array<{ curl: number; curlCpu: number; dfget: number; dfgetCpu: number; daemonCpu: number; rss: number }> = [];
  const url = origin.url(`/${sizeMiB}.bin`);
  for (let run = 1; run <= runs; run++) {
    const curl = await timedInHost(host, "curl", ["-sf", "-o", join(out, "curl.out"), url], "curl");
    await rm(join(out, "curl.out"), { force: true });
    const d = await freshDaemon(host);
    const cpuBefore = await d.cpuSeconds();
    const dfget = await timedInHost(host, process.execPath, dfgetArgs(d, url, join(out, "dfget.out")), "dfget");
    rows.push({
      curl: curl.seconds,
      curlCpu: curl.cpu,
      dfget: dfget.seconds,
      dfgetCpu: dfget.cpu,
      daemonCpu: (await d.cpuSeconds()) - cpuBefore,
      rss: await peakRssMiB(d.child.pid),
    });
    await rm(join(out, "dfget.out"), { force: true });
  }
  const gib = sizeMiB / 1024;
  console.log(`\n1. ${sizeMiB} MiB, ${runs} runs (curl and dfget alternate; each dfget on a fresh daemon, cold cache)`);
  console.log("run  curl s  curl MiB/s  curl CPU-s/GiB  dfget s  dfget MiB/s  dfget/curl  daemon CPU-s/GiB  dfget CPU-s  daemon peak RSS MiB");
  rows.forEach((r, i) =>
    console.log(
      `${String(i + 1).padEnd(4)} ${fmt(r.curl).padStart(6)}  ${fmt(sizeMiB / r.curl, 0).padStart(10)}  ${fmt(r.curlCpu / gib).padStart(14)}  ${fmt(r.dfget).padStart(7)}  ${fmt(sizeMiB / r.dfget, 0).padStart(11)}  ${fmt(r.curl / r.dfget).padStart(10)}  ${fmt(r.daemonCpu / gib).padStart(16)}  ${fmt(r.dfgetCpu).padStart(11)}  ${fmt(r.rss, 0).padStart(19)}`,
    ),
  );
  const curlMedian = median(rows.map((r) => r.curl));
  const dfgetMedian = median(rows.map((r) => r.dfget));
  console.log(
    `median: curl ${fmt(sizeMiB / curlMedian, 0)} MiB/s, dfget ${fmt(sizeMiB / dfgetMedian, 0)} MiB/s, dfget/curl ${fmt(curlMedian / dfgetMedian)} (target ≥ 0.95), ` +
      `daemon ${fmt(median(rows.map((r) => r.daemonCpu)) / gib)} CPU-s per GiB`,
  );

  // 2. Peak RSS of a fresh daemon for one download of each size.
  console.log("\n2. daemon peak RSS (VmHWM) for one download, fresh daemon each (target ≤ 256 MiB)");
  for (const mib of rssSizes) {
    const d = await freshDaemon(host);
    const dfget = await timedInHost(host, process.execPath, dfgetArgs(d, origin.url(`/${mib}.bin`), join(out, "rss.out")), "dfget");
    console.log(
      `${String(mib).padStart(6)} MiB: ${fmt(dfget.seconds)} s, ${fmt(mib / dfget.seconds, 0)} MiB/s, peak RSS ${fmt(await peakRssMiB(d.child.pid), 0)} MiB`,
    );
    await rm(join(out, "rss.out"), { force: true });
  }

  // 3. Many at once: `concurrent` different URLs (symlinks to one file, so nginx reads it from the page cache) through one daemon.
  if (concurrent > 0) {
    for (let i = 0; i < concurrent; i++) await symlink(`${concurrentMiB}.bin`, join(origin.root, `c${i}.bin`));
    const curlStarted = performance.now();
    await Promise.all(
      Array.from({ length: concurrent }, (_, i) =>
        timedInHost(host, "curl", ["-sf", "-o", join(out, `curl-${i}.out`), origin!.url(`/c${i}.bin`)], `curl-${i}`),
      ),
    );
    const curlSeconds = (performance.now() - curlStarted) / 1000;
    for (let i = 0; i < concurrent; i++) await rm(join(out, `curl-${i}.out`), { force: true });
    const d = await freshDaemon(host);
    const dfgetStarted = performance.now();
    await Promise.all(
      Array.from({ length: concurrent }, (_, i) =>
        timedInHost(host, process.execPath, dfgetArgs(d, origin!.url(`/c${i}.bin`), join(out, `dfget-${i}.out`)), `dfget-${i}`),
      ),
    );
    const dfgetSeconds = (performance.now() - dfgetStarted) / 1000;
    const total = concurrent * concurrentMiB;
    console.log(`\n3. ${concurrent} concurrent downloads of ${concurrentMiB} MiB (different URLs), one daemon`);
    console.log(
      `curl: ${fmt(curlSeconds)} s, ${fmt(total / curlSeconds, 0)} MiB/s aggregate; dfget: ${fmt(dfgetSeconds)} s, ${fmt(total / dfgetSeconds, 0)} MiB/s aggregate ` +
        `(${fmt(curlSeconds / dfgetSeconds)} × curl); daemon peak RSS ${fmt(await peakRssMiB(d.child.pid), 0)} MiB (target ≤ 256)`,
    );
  }
} finally {
  await daemon?.stop().catch(() => undefined);
  await origin?.close().catch(() => undefined);
  await network?.close().catch(() => undefined);
  await removeOwnNetwork().catch(() => undefined);
  if (values.dir === undefined) await rm(dir, { recursive: true, force: true });
}
