import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { schedulerClient } from "../helpers/pki.js";
import { LacewingError } from "@lacewing/common";
import { dfget, metricValue, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { BIN, runCommand, startDaemon } from "../helpers/processes.js";
import { waitUntil } from "../helpers/wait.js";

const MiB = 1024 * 1024;

async function finishedPeers(scheduler: string, taskId: string): Promise<number> {
  const client = schedulerClient(scheduler);
  try {
    return (await client.statTask({ taskId }, { timeoutMs: 2_000 })).finishedPeerCount;
  } catch (err) {
    if (err instanceof LacewingError && err.code === "LW_ERR_TASK_NOT_FOUND") return 0;
    throw err;
  } finally {
    client.close();
  }
}
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

interface DfgetJson {
  ok: boolean;
  taskId: string;
  traffic: { origin: number; peers: number; cache: number };
  error?: { code: string; message: string };
}

interface GcJson {
  dryRun: boolean;
  evictions: Array<{ taskId: string; reason: string; detail: string; bytes: number }>;
  usage: { cacheBytes: number; quotaBytes: number; taskCount: number };
}

describe("node cache collection across processes", () => {
  let root: string;
  let origin: TestOrigin;
  const files: Record<string, Buffer> = {
    "/q16.bin": randomBytesOf(16 * MiB, 1),
    "/q6a.bin": randomBytesOf(6 * MiB, 2),
    "/q6b.bin": randomBytesOf(6 * MiB, 3),
    "/g1.bin": randomBytesOf(4 * MiB, 4),
    "/g2.bin": randomBytesOf(4 * MiB, 5),
    "/shared.bin": randomBytesOf(12 * MiB, 6),
  };
  const daemons: Array<{ stop: () => Promise<void> }> = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-gc-e2e-"));
    origin = new TestOrigin(files);
    await origin.start();
  });

  after(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await origin?.close();
    await rm(root, { recursive: true, force: true });
  });

  async function daemonIn(name: string, args: string[]): Promise<Daemon> {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    const daemon = { ...(await startDaemon(dir, args)), name, dir };
    daemons.push(daemon);
    return daemon;
  }

  const taskDirs = (daemon: Daemon): Promise<string[]> => readdir(join(daemon.dir, "data", "tasks"));
  const gc = (daemon: Daemon, ...args: string[]) => runCommand(BIN.dfdaemon, ["gc", "--socket", daemon.socket, ...args]);

  it("a task larger than the disk quota fails before its bytes are fetched; tasks that fit evict idle ones to make room", async () => {
    const daemon = await daemonIn("quota", ["--disk-quota", "10MiB"]);
    origin.bytesSent = 0;
    const tooBig = await dfget(daemon, origin.url("/q16.bin"), join(root, "q16.out"));
    assert.equal(tooBig.code, 1, tooBig.stderr);
    const failure = JSON.parse(tooBig.stdout) as DfgetJson;
    assert.equal(failure.error?.code, "LW_ERR_DISK_FULL");
    assert.match(failure.error?.message ?? "", /10\.0 MiB cache quota/);
    assert.ok(origin.bytesSent <= 1, `only the probe byte was fetched, not ${origin.bytesSent}`);
    assert.deepEqual(await taskDirs(daemon), [], "nothing is left of the refused task");

    const a = await dfget(daemon, origin.url("/q6a.bin"), join(root, "q6a.out"));
    assert.equal(a.code, 0, a.stderr);
    const b = await dfget(daemon, origin.url("/q6b.bin"), join(root, "q6b.out"));
    assert.equal(b.code, 0, b.stderr);
    assert.equal(sha256(await readFile(join(root, "q6b.out"))), sha256(files["/q6b.bin"]!));
    assert.deepEqual(await taskDirs(daemon), [(JSON.parse(b.stdout) as DfgetJson).taskId], "the older task made room");
    assert.equal(await metricValue(daemon.ports.metrics, "lacewing_dfdaemon_evictions_total", { reason: "quota" }), 1);
  });

  it("`dfdaemon gc --dry-run` lists what would go and why; `gc` and `gc --task` evict", async () => {
    const daemon = await daemonIn("gc", ["--disk-quota", "100MiB", "--high-watermark", "3", "--low-watermark", "1", "--gc-interval", "1h"]);
    const first = JSON.parse((await dfget(daemon, origin.url("/g1.bin"), join(root, "g1.out"))).stdout) as DfgetJson;
    const second = JSON.parse((await dfget(daemon, origin.url("/g2.bin"), join(root, "g2.out"))).stdout) as DfgetJson;

    const dry = await gc(daemon, "--dry-run", "--json");
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as GcJson;
    assert.equal(plan.dryRun, true);
    assert.deepEqual(
      plan.evictions.map((e) => [e.taskId, e.reason, e.bytes]),
      [
        [first.taskId, "quota", 4 * MiB],
        [second.taskId, "quota", 4 * MiB],
      ],
      "least recently used first",
    );
    assert.match(plan.evictions[0]!.detail, /above 3% of the 100\.0 MiB quota/);
    assert.deepEqual(plan.usage, { ...plan.usage, cacheBytes: 8 * MiB, quotaBytes: 100 * MiB, taskCount: 2 });
    assert.equal((await taskDirs(daemon)).length, 2, "a dry run removes nothing");

    const human = await gc(daemon, "--dry-run");
    assert.match(human.stdout, /^would evict 2 tasks, 8\.0 MiB$/m);
    assert.match(human.stdout, /quota .*g1\.bin/);

    const one = await gc(daemon, "--task", first.taskId);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(await taskDirs(daemon), [second.taskId]);
    const missing = await gc(daemon, "--task", first.taskId);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not in this daemon's cache/);

    const run = JSON.parse((await gc(daemon, "--json")).stdout) as GcJson;
    assert.deepEqual(
      run.evictions.map((e) => e.taskId),
      [second.taskId],
    );
    assert.deepEqual(await taskDirs(daemon), []);
    assert.equal(await metricValue(daemon.ports.metrics, "lacewing_dfdaemon_evictions_total", { reason: "manual" }), 1);
    assert.equal(await metricValue(daemon.ports.metrics, "lacewing_dfdaemon_evictions_total", { reason: "quota" }), 1);
  });

  it("an evicted task is reported to the scheduler, which stops handing that peer out as a parent", async () => {
    const scheduler: SchedulerProcess = await startScheduler();
    daemons.push(scheduler);
    const holder = await startPeer(root, "holder", scheduler.address);
    const later = await startPeer(root, "later", scheduler.address);
    daemons.push(holder, later);
    await waitForHosts(scheduler.address, 2);
    const held = await dfget(holder, origin.url("/shared.bin"), join(root, "shared-holder.out"));
    assert.equal(held.code, 0, held.stderr);
    const taskId = (JSON.parse(held.stdout) as DfgetJson).taskId;
    assert.equal(await finishedPeers(scheduler.address, taskId), 1, "the scheduler knows the holder has the task");
    const evicted = await gc(holder, "--task", taskId);
    assert.equal(evicted.code, 0, evicted.stderr);
    // The report is sent as the task leaves the store; the scheduler has it a moment later.
    await waitUntil("the scheduler no longer counts the holder", async () => (await finishedPeers(scheduler.address, taskId)) === 0, { timeoutMs: 5_000 });

    origin.bytesSent = 0;
    const result = await dfget(later, origin.url("/shared.bin"), join(root, "shared-later.out"));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sha256(await readFile(join(root, "shared-later.out"))), sha256(files["/shared.bin"]!));
    const traffic = (JSON.parse(result.stdout) as DfgetJson).traffic;
    assert.equal(traffic.peers, 0);
    assert.equal(traffic.origin, files["/shared.bin"]!.byteLength);
    assert.equal(await metricValue(later.ports.metrics, "lacewing_dfdaemon_piece_failures_total"), 0, "the evicting peer was never tried as a parent");
  });
});
