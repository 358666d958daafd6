import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatAge, planEvictions, planRoom, type GcPolicy, type TaskView } from "./eviction-policy.js";

const MiB = 1024 * 1024;
const HOUR = 3_600_000;
const NOW = 1_700_000_000_000;
const policy: GcPolicy = { taskTtlMs: 6 * HOUR, quotaBytes: 0, highWatermark: 90, lowWatermark: 80 };

function task(taskId: string, mib: number, ageMs: number, extra: Partial<TaskView> = {}): TaskView {
  return { taskId, url: `http://o/${taskId}`, bytes: mib * MiB, footprint: mib * MiB, lastAccessedAt: NOW - ageMs, finished: true, busy: false, ...extra };
}

const ids = (list: Array<{ taskId: string }>): string[] => list.map((t) => t.taskId);

describe("planEvictions", () => {
  it("evicts idle tasks not accessed for the TTL and keeps younger ones", () => {
    const plan = planEvictions([task("old", 1, 6 * HOUR), task("young", 1, 6 * HOUR - 1)], NOW, undefined, policy);
    assert.deepEqual(ids(plan), ["old"]);
    assert.equal(plan[0]!.reason, "ttl");
    assert.match(plan[0]!.detail, /not accessed for 6h \(ttl 6h\)/);
  });

  it("never evicts a busy task, however old", () => {
    assert.deepEqual(planEvictions([task("busy", 1, 100 * HOUR, { busy: true })], NOW, undefined, policy), []);
  });

  it("treats an idle unfinished task like a finished one", () => {
    const plan = planEvictions([task("partial", 1, 7 * HOUR, { finished: false })], NOW, undefined, policy);
    assert.deepEqual(ids(plan), ["partial"]);
    assert.equal(plan[0]!.finished, false);
  });

  it("above the high watermark of the quota evicts least recently used idle tasks until under the low one", () => {
    const tasks = [task("a", 30, 4000), task("b", 30, 3000, { busy: true }), task("c", 30, 2000), task("d", 5, 1000)];
    // 95 MiB of a 100 MiB quota: above 90%, evict down to 80 MiB → 15 MiB: a (oldest idle) is enough.
    const plan = planEvictions(tasks, NOW, undefined, { ...policy, quotaBytes: 100 * MiB });
    assert.deepEqual(ids(plan), ["a"]);
    assert.equal(plan[0]!.reason, "quota");
    // Down to 50%: a, then b is busy, so c, then d.
    const deeper = planEvictions(tasks, NOW, undefined, { ...policy, quotaBytes: 100 * MiB, lowWatermark: 20 });
    assert.deepEqual(ids(deeper), ["a", "c", "d"]);
  });

  it("does nothing at or under the high watermark", () => {
    assert.deepEqual(planEvictions([task("a", 90, 1000)], NOW, undefined, { ...policy, quotaBytes: 100 * MiB }), []);
  });

  it("counts TTL evictions before deciding on watermark evictions", () => {
    const tasks = [task("expired", 20, 7 * HOUR), task("a", 75, 1000)];
    // 95 of 100 MiB, but the expired task frees 20: 75 is under the high watermark.
    assert.deepEqual(ids(planEvictions(tasks, NOW, undefined, { ...policy, quotaBytes: 100 * MiB })), ["expired"]);
  });

  it("above the high watermark of the filesystem evicts least recently used tasks", () => {
    const filesystem = { size: 1000 * MiB, used: 950 * MiB, available: 50 * MiB };
    const plan = planEvictions([task("new", 100, 10), task("old", 100, 20), task("empty", 0, 30)], NOW, filesystem, policy);
    assert.deepEqual(ids(plan), ["old", "new"]);
    assert.ok(plan.every((e) => e.reason === "watermark"));
    assert.match(plan[0]!.detail, /filesystem 95% full, above the 90% watermark/);
  });

  it("with a quota set, follows the quota's watermarks and not the filesystem's", () => {
    const filesystem = { size: 1000 * MiB, used: 990 * MiB, available: 10 * MiB };
    assert.deepEqual(planEvictions([task("a", 50, 10)], NOW, filesystem, { ...policy, quotaBytes: 100 * MiB }), []);
  });

  it("keeps two versions of one image tag apart: the old blob ages out, the new one stays", () => {
    const plan = planEvictions([task("blob-v1", 10, 7 * HOUR), task("blob-v2", 10, HOUR)], NOW, undefined, policy);
    assert.deepEqual(ids(plan), ["blob-v1"]);
  });
});

describe("planRoom", () => {
  const quota = { ...policy, quotaBytes: 100 * MiB };

  it("refuses a task larger than the whole quota", () => {
    const plan = planRoom([task("t", 0, 0, { busy: true })], "t", 120 * MiB, undefined, quota);
    assert.ok("error" in plan);
    assert.match(plan.error, /more than the whole 100\.0 MiB cache quota/);
  });

  it("makes room under the quota by evicting idle tasks least recently used first, counting unfinished ones at full length", () => {
    const tasks = [
      task("t", 0, 0, { busy: true, footprint: 40 * MiB }),
      task("old", 30, 3000),
      task("older", 10, 4000),
      task("downloading", 10, 0, { busy: true, finished: false, footprint: 40 * MiB }),
    ];
    // Committed: 40 (downloading) + 30 + 10 = 80; t needs 40 → 20 over: older (10) then old (30).
    const plan = planRoom(tasks, "t", 40 * MiB, undefined, quota);
    assert.ok("evictions" in plan);
    assert.deepEqual(ids(plan.evictions), ["older", "old"]);
    assert.ok(plan.evictions.every((e) => e.reason === "quota"));
  });

  it("fails when only busy tasks could make room", () => {
    const plan = planRoom([task("t", 0, 0, { busy: true }), task("reading", 90, 0, { busy: true })], "t", 20 * MiB, undefined, quota);
    assert.ok("error" in plan);
    assert.match(plan.error, /taken by tasks in use/);
  });

  it("makes room on a full filesystem or says the disk is full", () => {
    const filesystem = { size: 100 * MiB, used: 90 * MiB, available: 10 * MiB };
    const ok = planRoom([task("t", 0, 0, { busy: true }), task("idle", 15, 100)], "t", 20 * MiB, filesystem, policy);
    assert.deepEqual("evictions" in ok ? ids(ok.evictions) : ok, ["idle"]);
    const full = planRoom([task("t", 0, 0, { busy: true })], "t", 20 * MiB, filesystem, policy);
    assert.ok("error" in full);
    assert.match(full.error, /the disk is full/);
  });

  it("needs nothing when the task fits", () => {
    assert.deepEqual(planRoom([task("t", 0, 0)], "t", MiB, { size: 10 * MiB, used: 0, available: 10 * MiB }, quota), { evictions: [] });
  });
});

describe("formatAge", () => {
  it("prints the two largest units", () => {
    assert.equal(formatAge(6 * HOUR), "6h");
    assert.equal(formatAge(7.5 * HOUR), "7h30m");
    assert.equal(formatAge(90_000), "1m30s");
    assert.equal(formatAge(2 * 86_400_000 + 3 * HOUR + 5 * 60_000), "2d3h");
    assert.equal(formatAge(250), "250ms");
  });
});
