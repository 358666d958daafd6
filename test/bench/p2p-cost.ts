// Benchmark (not a test): where a P2P download's CPU goes. A scheduler, a
// seed peer and N dfdaemons on loopback (no shaping: the point is CPU per
// byte, not time), every peer dfgets one blob at once; then, per daemon, CPU
// seconds per GiB received, split into user and system time and by thread
// (the main JavaScript thread, libuv's pool, V8's helpers), and, with
// --strace, the system calls of one peer daemon.
//   node test/dist/bench/p2p-cost.js [--peers 3] [--size-mib 512] [--origin-mib-per-s N] [--strace] [--peer-args='…'] [--dfget-args='…']
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dfget, startPeer, startScheduler, waitForHosts, type Daemon } from "../helpers/cluster.js";
import { startBinary } from "../helpers/commands.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";

const { values } = parseArgs({
  options: {
    peers: { type: "string", default: "3" },
    "size-mib": { type: "string", default: "512" },
    strace: { type: "boolean", default: false },
    "peer-args": { type: "string", default: "" },
    "seed-args": { type: "string", default: "" },
    "dfget-args": { type: "string", default: "" },
    "origin-mib-per-s": { type: "string", default: "0" },
  },
});
const peers = Number(values.peers);
const size = Number(values["size-mib"]) * 1024 * 1024;
const split = (text: string): string[] => text.split(" ").filter(Boolean);
const USER_HZ = 100;

interface ThreadTimes {
  user: number;
  system: number;
  byThread: Map<string, number>;
  voluntary: number;
  involuntary: number;
}

/**
 * CPU of every thread of `pid` so far, grouped: the main thread; V8's
 * platform workers (GC, compilation), which Node starts first, four of them
 * and a delayed-task thread; and the threads started after them, which are
 * libuv's pool (file system, crypto jobs, DNS). Node 20 names them all
 * "node", so the grouping goes by creation order.
 */
async function threadTimes(pid: number): Promise<ThreadTimes> {
  const result: ThreadTimes = { user: 0, system: 0, byThread: new Map(), voluntary: 0, involuntary: 0 };
  const tids = (await readdir(`/proc/${pid}/task`).catch(() => [])).map(Number).sort((a, b) => a - b);
  for (const [index, tid] of tids.entries()) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8").catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const user = Number(fields[11] ?? 0) / USER_HZ;
    const system = Number(fields[12] ?? 0) / USER_HZ;
    result.user += user;
    result.system += system;
    const group = tid === pid ? "main" : index <= 5 ? "V8" : "libuv";
    result.byThread.set(group, (result.byThread.get(group) ?? 0) + user + system);
    const status = await readFile(`/proc/${pid}/task/${tid}/status`, "utf8").catch(() => "");
    result.voluntary += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
    result.involuntary += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return result;
}

function diff(after: ThreadTimes, before: ThreadTimes): ThreadTimes {
  const byThread = new Map<string, number>();
  for (const [name, seconds] of after.byThread) byThread.set(name, seconds - (before.byThread.get(name) ?? 0));
  return {
    user: after.user - before.user,
    system: after.system - before.system,
    byThread,
    voluntary: after.voluntary - before.voluntary,
    involuntary: after.involuntary - before.involuntary,
  };
}

const root = await mkdtemp(join(tmpdir(), "lacewing-p2p-cost-"));
const blob = randomBytesOf(size, 61);
const expected = createHash("sha256").update(blob).digest("hex");
const origin = new TestOrigin({ "/blob.bin": blob });
// A slow origin paces the whole download (children follow the seed piece by piece) without a rate limiter in the daemons.
origin.bytesPerSecond = Number(values["origin-mib-per-s"]) * 1024 * 1024;
await origin.start();
const scheduler = await startScheduler();
const seed = await startPeer(root, "seed", scheduler.address, ["--seed", ...split(values["seed-args"])]);
const nodes: Daemon[] = [];
for (let i = 1; i <= peers; i++) nodes.push(await startPeer(root, `peer${i}`, scheduler.address, split(values["peer-args"])));
await waitForHosts(scheduler.address, peers + 1);

const daemons = [seed, ...nodes];
const before = await Promise.all(daemons.map((d) => threadTimes(d.child.pid!)));
const strace =
  values.strace && nodes[0] !== undefined ? startBinary("strace", ["-c", "-f", "-p", String(nodes[0].child.pid), "-o", join(root, "strace.txt")]) : undefined;
const started = performance.now();
const results = await Promise.all(nodes.map((node) => dfget(node, origin.url("/blob.bin"), join(root, `${node.name}.out`), ...split(values["dfget-args"]))));
const seconds = (performance.now() - started) / 1000;
const after = await Promise.all(daemons.map((d) => threadTimes(d.child.pid!)));
for (const [i, result] of results.entries()) if (result.code !== 0) throw new Error(`dfget on ${nodes[i]!.name} failed: ${result.stderr}`);
for (const node of nodes) {
  const digest = createHash("sha256")
    .update(await readFile(join(root, `${node.name}.out`)))
    .digest("hex");
  if (digest !== expected) throw new Error(`${node.name} got the wrong bytes`);
}
if (strace !== undefined) {
  strace.child.kill("SIGINT");
  await new Promise((resolve) => strace.child.once("exit", resolve));
}

const gib = size / 1024 ** 3;
console.log(
  `${peers} peers + seed on loopback, ${values["size-mib"]} MiB, all done in ${seconds.toFixed(2)} s; origin sent ${(origin.bytesSent / size).toFixed(3)} × the blob`,
);
console.log("daemon   CPU-s/GiB  user  system  main  libuv-pool  V8-helpers  other  ctx-switches/MiB (vol/invol)");
for (const [i, daemon] of daemons.entries()) {
  const d = diff(after[i]!, before[i]!);
  const per = (x: number): string => (x / gib).toFixed(2).padStart(5);
  const pool = d.byThread.get("libuv") ?? 0;
  const v8 = d.byThread.get("V8") ?? 0;
  const main = d.byThread.get("main") ?? 0;
  const other = d.user + d.system - pool - v8 - main;
  const mib = size / 1024 / 1024;
  console.log(
    `${daemon.name.padEnd(8)} ${per(d.user + d.system).padStart(9)}  ${per(d.user)}  ${per(d.system).padStart(6)}  ${per(main)}  ${per(pool).padStart(10)}  ${per(v8).padStart(10)}  ${per(other)}  ${(d.voluntary / mib).toFixed(1)}/${(d.involuntary / mib).toFixed(1)}`,
  );
}
if (strace !== undefined) {
  const text = await readFile(join(root, "strace.txt"), "utf8").catch(() => "");
  console.log(`\nsystem calls of ${nodes[0]!.name} during the download (strace -c -f):`);
  console.log(text.split("\n").slice(0, 22).join("\n"));
}

for (const daemon of [...nodes, seed]) await daemon.stop();
await scheduler.stop();
await origin.close();
await rm(root, { recursive: true, force: true });
