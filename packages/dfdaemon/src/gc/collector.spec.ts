import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pieceDigestOf, isLacewingError, silentLogger, taskIdOf } from "@lacewing/common";
import { createDfdaemonMetrics } from "../metrics.js";
import { TaskStore } from "../storage/task-store.js";
import { FakeClock } from "../testing/fake-clock.js";
import { CacheCollector, type CollectorOptions } from "./collector.js";
import type { EvictionReason, GcPolicy } from "./eviction-policy.js";
import { taskMeta } from "../testing/fixtures.js";

const MiB = 1024 * 1024;
const HOUR = 3_600_000;
const policy: GcPolicy = { taskTtlMs: 6 * HOUR, quotaBytes: 0, highWatermark: 90, lowWatermark: 80 };

interface Fixture {
  store: TaskStore;
  clock: FakeClock;
  collector: CacheCollector;
  evicted: Array<[string, EvictionReason]>;
  downloading: Set<string>;
  metrics: ReturnType<typeof createDfdaemonMetrics>;
  /** A finished task of `mib` MiB (1 MiB pieces) last accessed `ageMs` before the clock's now. */
  addTask(taskId: string, mib: number, ageMs: number, finished?: boolean): Promise<void>;
  evictions(reason: EvictionReason): Promise<number>;
}

describe("CacheCollector", () => {
  const dirs: string[] = [];
  const collectors: CacheCollector[] = [];
  after(async () => {
    await Promise.all(collectors.map((c) => c.close()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  async function fixture(overrides: Partial<GcPolicy> = {}, options: Partial<CollectorOptions> = {}): Promise<Fixture> {
    const dir = await mkdtemp(join(tmpdir(), "lacewing-gc-"));
    dirs.push(dir);
    const clock = new FakeClock();
    const evicted: Array<[string, EvictionReason]> = [];
    const downloading = new Set<string>();
    const store: TaskStore = new TaskStore(dir, silentLogger(), { reserve: (task, bytes): Promise<void> => collector.reserve(task, bytes) });
    await store.open();
    const metrics = createDfdaemonMetrics(store);
    const collector: CacheCollector = new CacheCollector({
      store,
      isDownloading: (taskId) => downloading.has(taskId),
      policy: { ...policy, ...overrides },
      intervalMs: 60_000,
      log: silentLogger(),
      evictions: metrics.evictions,
      onEvicted: (taskId, reason) => evicted.push([taskId, reason]),
      clock,
      filesystem: async () => undefined,
      ...options,
    });
    collectors.push(collector);
    return {
      store,
      clock,
      collector,
      evicted,
      downloading,
      metrics,
      async addTask(taskId, mib, ageMs, finished = true) {
        const at = clock.now() - ageMs;
        const task = await store.create(
          taskMeta({ taskId, url: `http://o/${taskId}`, contentLength: mib * MiB, pieceLength: MiB, createdAt: at, lastAccessedAt: at }),
        );
        for (let n = 0; n < mib; n++) {
          const bytes = Buffer.alloc(MiB, n);
          await task.writePiece({ number: n, offset: n * MiB, length: MiB, sha256: pieceDigestOf(bytes) }, bytes);
        }
        if (finished) await task.markFinished();
      },
      async evictions(reason) {
        const metric = await metrics.evictions.get();
        return metric.values.find((v) => v.labels["reason"] === reason)?.value ?? 0;
      },
    };
  }

  const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const taskDirs = async (store: TaskStore): Promise<string[]> => (await readdir(store.root)).sort();

  it("runs every gcInterval on its clock and not before", async () => {
    const f = await fixture();
    f.collector.start();
    f.clock.advance(59_999);
    await flush();
    assert.equal(f.collector.passes, 0);
    const first = once(f.collector, "collected");
    f.clock.advance(1);
    await first;
    assert.equal(f.collector.passes, 1);
    // The next pass is scheduled only once the previous one finished, a whole interval later.
    assert.equal(f.clock.pending, 1);
    const second = once(f.collector, "collected");
    f.clock.advance(60_000);
    await second;
    assert.equal(f.collector.passes, 2);
    await f.collector.close();
    assert.equal(f.clock.pending, 0, "close cancels the timer");
  });

  it("evicts a task once it has not been accessed for the TTL, removes its files and reports it", async () => {
    const f = await fixture();
    await f.addTask("aged", 1, 6 * HOUR - 90_000);
    await f.addTask("fresh", 1, HOUR);
    f.collector.start();
    let pass = once(f.collector, "collected");
    f.clock.advance(60_000);
    await pass;
    assert.deepEqual(f.evicted, [], "30s short of the TTL, nothing goes");
    pass = once(f.collector, "collected");
    f.clock.advance(60_000);
    await pass;
    assert.deepEqual(f.evicted, [["aged", "ttl"]]);
    assert.equal(f.store.get("aged"), undefined);
    assert.deepEqual(await taskDirs(f.store), ["fresh"]);
    assert.equal(await f.evictions("ttl"), 1);
  });

  it("evicts least recently used tasks above the high watermark of a small quota until under the low one", async () => {
    const f = await fixture({ quotaBytes: 4 * MiB, highWatermark: 90, lowWatermark: 50 });
    await f.addTask("a", 1, 4000);
    await f.addTask("b", 1, 3000);
    await f.addTask("c", 1, 2000);
    await f.addTask("d", 1, 1000);
    const report = await f.collector.collect();
    assert.deepEqual(
      report.evictions.map((e) => [e.taskId, e.reason]),
      [
        ["a", "quota"],
        ["b", "quota"],
      ],
    );
    assert.deepEqual(await taskDirs(f.store), ["c", "d"]);
    assert.equal(await f.evictions("quota"), 2);
  });

  it("lists without removing on a dry run", async () => {
    const f = await fixture();
    await f.addTask("aged", 1, 7 * HOUR);
    const report = await f.collector.collect({ dryRun: true });
    assert.deepEqual(
      report.evictions.map((e) => e.taskId),
      ["aged"],
    );
    assert.match(report.evictions[0]!.detail, /not accessed for 7h/);
    assert.notEqual(f.store.get("aged"), undefined);
    assert.deepEqual(f.evicted, []);
  });

  it("refuses to evict a task with a reader, in a pass or on request, and evicts it once released", async () => {
    const f = await fixture();
    await f.addTask("read", 1, 7 * HOUR);
    const lease = f.store.acquire("read")!;
    const report = await f.collector.collect();
    assert.deepEqual(report.evictions, []);
    assert.equal(report.busyTaskCount, 1);
    await assert.rejects(
      f.collector.evict("read"),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_TASK_BUSY" && /being read/.test(err.message),
    );
    assert.deepEqual(await lease.task.readPiece(0), Buffer.alloc(MiB, 0), "the reader's bytes are intact");
    lease.release();
    // Released means accessed: the TTL starts again.
    assert.deepEqual((await f.collector.collect()).evictions, []);
    const manual = await f.collector.evict("read");
    assert.equal(manual.reason, "manual");
    assert.deepEqual(f.evicted, [["read", "manual"]]);
    assert.equal(await f.evictions("manual"), 1);
  });

  it("refuses to evict a task being downloaded", async () => {
    const f = await fixture();
    await f.addTask("partial", 1, 7 * HOUR, false);
    f.downloading.add("partial");
    assert.deepEqual((await f.collector.collect()).evictions, []);
    await assert.rejects(f.collector.evict("partial"), /being downloaded/);
    f.downloading.delete("partial");
    assert.deepEqual(
      (await f.collector.collect()).evictions.map((e) => [e.taskId, e.finished]),
      [["partial", false]],
    );
  });

  it("takes an evicted task out of reach at once: a lookup misses and a stale reference cannot be acquired", async () => {
    const f = await fixture();
    await f.addTask("gone", 1, 7 * HOUR);
    const stale = f.store.get("gone")!;
    const pass = f.collector.collect();
    // Still in the store until the pass runs; after it, neither path reaches it.
    await pass;
    assert.equal(f.store.acquire("gone"), undefined);
    assert.equal(stale.acquire(), undefined);
    assert.equal(stale.closed, true);
  });

  it("writes access times kept in memory to meta.json on each pass", async () => {
    const f = await fixture();
    await f.addTask("served", 1, HOUR);
    f.store.acquire("served")!.release();
    const accessed = f.store.get("served")!.lastAccessedAt;
    await f.collector.collect();
    await f.store.close();
    const reopened = new TaskStore(join(f.store.root, ".."), silentLogger());
    await reopened.open();
    assert.equal(reopened.get("served")!.lastAccessedAt, accessed);
    await reopened.close();
  });

  it("keeps two versions of one image tag as separate tasks and ages out the old one", async () => {
    const f = await fixture();
    const v1 = taskIdOf({ url: `https://registry.example/v2/app/blobs/sha256:${"1".repeat(64)}`, tag: "", application: "", filteredQueryParams: [] });
    const v2 = taskIdOf({ url: `https://registry.example/v2/app/blobs/sha256:${"2".repeat(64)}`, tag: "", application: "", filteredQueryParams: [] });
    assert.notEqual(v1, v2);
    await f.addTask(v1, 1, 7 * HOUR);
    await f.addTask(v2, 1, 5 * 60_000);
    await f.collector.collect();
    assert.deepEqual(f.evicted, [[v1, "ttl"]]);
    assert.notEqual(f.store.get(v2), undefined);
  });

  it("refuses a task larger than the quota when its length becomes known", async () => {
    const f = await fixture({ quotaBytes: 2 * MiB });
    const task = await f.store.create(taskMeta({ taskId: "big", url: "http://o/big" }));
    await assert.rejects(
      task.setLength(3 * MiB, MiB),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_DISK_FULL" && /cache quota/.test(err.message),
    );
    assert.equal(task.lengthKnown, false);
  });

  it("makes room under the quota by evicting idle tasks when a new task's length becomes known", async () => {
    const f = await fixture({ quotaBytes: 3 * MiB });
    await f.addTask("old", 1, 2000);
    await f.addTask("newer", 1, 1000);
    const task = await f.store.create(taskMeta({ taskId: "new", url: "http://o/new" }));
    await task.setLength(2 * MiB, MiB);
    assert.deepEqual(f.evicted, [["old", "quota"]]);
    assert.deepEqual(await taskDirs(f.store), ["new", "newer"]);
  });
});
