import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { silentLogger } from "@lacewing/common";
import { Counter, Registry } from "prom-client";
import { importFile } from "../persistent/import-file.js";
import { TaskStore } from "../storage/task-store.js";
import { CacheCollector } from "./collector.js";
import { planEvictions, planRoom, type GcPolicy, type TaskView } from "./eviction-policy.js";

const MiB = 1024 * 1024;
const HOUR = 3_600_000;
const NOW = 1_700_000_000_000;
const policy: GcPolicy = { taskTtlMs: 6 * HOUR, quotaBytes: 100 * MiB, highWatermark: 90, lowWatermark: 80 };

function task(taskId: string, mib: number, ageMs: number, extra: Partial<TaskView> = {}): TaskView {
  return { taskId, url: `http://o/${taskId}`, bytes: mib * MiB, footprint: mib * MiB, lastAccessedAt: NOW - ageMs, finished: true, busy: false, ...extra };
}
const ids = (list: Array<{ taskId: string }>): string[] => list.map((t) => t.taskId);

describe("GC of persistent cache tasks", () => {
  it("never evicts a persistent task before its expiry: not by the task TTL, not by the quota's watermarks", () => {
    const tasks = [task("persistent", 95, 100 * HOUR, { expiresAt: NOW + 1 }), task("ordinary", 1, 1000)];
    const plan = planEvictions(tasks, NOW, undefined, policy);
    assert.deepEqual(ids(plan), ["ordinary"], "the quota is over, yet only the ordinary task goes");
  });

  it("never evicts one by the filesystem's watermarks, nor to make room for another task", () => {
    const filesystem = { size: 100 * MiB, used: 99 * MiB, available: 1 * MiB };
    const tasks = [task("persistent", 90, 100 * HOUR, { expiresAt: NOW + HOUR })];
    assert.deepEqual(planEvictions(tasks, NOW, filesystem, { ...policy, quotaBytes: 0 }), []);
    const room = planRoom(tasks, "new", 20 * MiB, filesystem, { ...policy, quotaBytes: 0 });
    assert.ok("error" in room, "the new task does not fit rather than pushing the persistent one out");
  });

  it("evicts it once expired, whenever it was last read, with reason expired", () => {
    const plan = planEvictions([task("persistent", 1, 0, { expiresAt: NOW - 60_000 })], NOW, undefined, policy);
    assert.deepEqual(ids(plan), ["persistent"]);
    assert.equal(plan[0]!.reason, "expired");
    assert.match(plan[0]!.detail, /expired 1m ago/);
  });

  it("keeps an expired one that is being read until its readers are done", () => {
    assert.deepEqual(planEvictions([task("persistent", 1, 0, { expiresAt: NOW - 1, busy: true })], NOW, undefined, policy), []);
  });

  it("an imported task keeps its metadata across a daemon restart, and the collector removes it after expiry and reports it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lacewing-persistent-gc-"));
    try {
      await writeFile(join(dir, "input.bin"), Buffer.alloc(300_000, 7));
      const first = new TaskStore(join(dir, "data"), silentLogger());
      await first.open();
      const expiresAt = Date.now() + HOUR;
      const { task: imported } = await importFile(first, {
        path: join(dir, "input.bin"),
        taskId: undefined,
        cache: { replicas: 2, expiresAt, ttlMs: HOUR },
        pieceLength: 65_536,
        isDownloading: () => false,
      });
      assert.equal(imported.finished, true);
      assert.equal(imported.totalPieces, 5);
      await first.close();

      const store = new TaskStore(join(dir, "data"), silentLogger());
      await store.open();
      const reloaded = store.get(imported.taskId)!;
      assert.equal(reloaded.finished, true, "every piece re-verified on load");
      assert.deepEqual(reloaded.persistent, { replicas: 2, expiresAt, ttlMs: HOUR });

      let now = Date.now() + 7 * HOUR;
      const reported: Array<[string, string]> = [];
      const collector = new CacheCollector({
        store,
        isDownloading: () => false,
        policy: { ...policy, taskTtlMs: 1 },
        intervalMs: 60_000,
        log: silentLogger(),
        evictions: new Counter({ name: "evictions_total", help: "x", labelNames: ["reason"], registers: [new Registry()] }),
        onEvicted: (taskId, reason) => reported.push([taskId, reason]),
        clock: { now: () => now, setTimeout: () => ({ clear: () => undefined }) },
        filesystem: async () => undefined,
      });
      now = expiresAt - 1;
      assert.deepEqual((await collector.collect()).evictions, [], "a TTL of 1 ms does not touch it before its expiry");
      now = expiresAt;
      assert.deepEqual(ids((await collector.collect()).evictions), [imported.taskId]);
      assert.deepEqual(reported, [[imported.taskId, "expired"]]);
      assert.equal(store.get(imported.taskId), undefined);
      await collector.close();
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
