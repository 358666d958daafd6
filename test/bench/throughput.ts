// Benchmark (not a test): dfget through a local dfdaemon versus curl, both
// pulling the same file from the same local origin in the same run.
//   node test/dist/bench/throughput.js [--size-mib 1024] [--runs 3]
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { BIN, startDaemon } from "../helpers/processes.js";
import { procCpuSeconds } from "../testbed/cluster.js";

const { values } = parseArgs({
  options: { "size-mib": { type: "string", default: "1024" }, runs: { type: "string", default: "3" }, "daemon-args": { type: "string", default: "" } },
});
const size = Number(values["size-mib"]) * 1024 * 1024;
const runs = Number(values.runs);

const dir = await mkdtemp(join(tmpdir(), "lacewing-bench-"));
const origin = new TestOrigin({ "/blob": randomBytesOf(size, 3) });
await origin.start();
const daemon = await startDaemon(dir, values["daemon-args"] === "" ? [] : values["daemon-args"].split(" "));

/** Runs a command to completion without blocking the event loop (the origin lives in this process). */
async function timed(command: string, args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  if (code !== 0) throw new Error(`${command} failed: ${stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const rows: Array<{ run: number; curl: number; dfget: number; daemonCpu: number }> = [];
try {
  for (let run = 1; run <= runs; run++) {
    const curl = await timed("curl", ["-sf", "-o", join(dir, "curl.out"), origin.url("/blob")]);
    // Each dfget run uses a fresh tag, so it is a cold download from the origin, not a cache hit.
    const cpuBefore = await procCpuSeconds(daemon.child.pid);
    const dfget = await timed(process.execPath, [
      BIN.dfget,
      origin.url("/blob"),
      "-O",
      join(dir, "dfget.out"),
      "--socket",
      daemon.socket,
      "--no-progress",
      "--tag",
      `bench-${run}-${Date.now()}`,
    ]);
    rows.push({ run, curl, dfget, daemonCpu: (await procCpuSeconds(daemon.child.pid)) - cpuBefore });
    await rm(join(dir, "curl.out"), { force: true });
    await rm(join(dir, "dfget.out"), { force: true });
  }
} finally {
  await daemon.stop();
  await origin.close();
  await rm(dir, { recursive: true, force: true });
}

const mib = size / 1048576;
console.log(`size ${mib} MiB, ${runs} runs, origin on loopback`);
console.log("run  curl s  curl MiB/s  dfget s  dfget MiB/s  dfget/curl throughput  daemon CPU-s/GiB");
for (const r of rows) {
  console.log(
    `${String(r.run).padEnd(4)} ${r.curl.toFixed(2).padStart(6)}  ${(mib / r.curl).toFixed(0).padStart(10)}  ${r.dfget.toFixed(2).padStart(7)}  ${(mib / r.dfget).toFixed(0).padStart(11)}  ${(r.curl / r.dfget).toFixed(2).padStart(8)}  ${((r.daemonCpu * 1024) / mib).toFixed(2).padStart(16)}`,
  );
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const curlMedian = median(rows.map((r) => r.curl));
const dfgetMedian = median(rows.map((r) => r.dfget));
console.log(
  `median: curl ${(mib / curlMedian).toFixed(0)} MiB/s, dfget ${(mib / dfgetMedian).toFixed(0)} MiB/s, ratio dfget/curl ${(curlMedian / dfgetMedian).toFixed(2)}, ` +
    `daemon ${((median(rows.map((r) => r.daemonCpu)) * 1024) / mib).toFixed(2)} CPU-s per GiB`,
);
