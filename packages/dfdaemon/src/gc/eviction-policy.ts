import { formatBytes } from "@lacewing/common";

export type EvictionReason = "ttl" | "watermark" | "quota" | "manual" | "expired" | "deleted";

/** What the policy needs to know of one stored task. */
export interface TaskView {
  taskId: string;
  url: string;
  /** Verified piece bytes on disk. */
  bytes: number;
  /** Bytes the task will hold once complete: its length when known, else what it holds. */
  footprint: number;
  lastAccessedAt: number;
  finished: boolean;
  /** Being downloaded or read right now: never evicted. */
  busy: boolean;
  /** A persistent cache task's expiry (ms since the epoch): kept until then whatever else the policy says, removed after. */
  expiresAt?: number | undefined;
}

export interface GcPolicy {
  taskTtlMs: number;
  /** 0: no quota. */
  quotaBytes: number;
  /** Percentages of the quota and of the filesystem. */
  highWatermark: number;
  lowWatermark: number;
}

/** The filesystem holding the cache; undefined when it cannot be measured. */
export interface FilesystemUsage {
  size: number;
  used: number;
  available: number;
}

export interface Eviction {
  taskId: string;
  url: string;
  bytes: number;
  lastAccessedAt: number;
  finished: boolean;
  reason: EvictionReason;
  /** Why, for people. */
  detail: string;
}

/**
 * The periodic plan. First every idle task not accessed for the TTL; then,
 * while above the high watermark, idle tasks in least recently used order
 * until under the low watermark. The watermarks are percentages of the
 * quota when one is set (the cache's bytes count), else of the filesystem
 * (its used bytes count, whoever wrote them). Idle unfinished tasks
 * (left by a crash or a failed caller) count like finished ones: they are
 * kept for a resume, but only under the same rules. Persistent cache tasks
 * (dfcache) are never planned before their expiry, and always after it.
 */
export function planEvictions(tasks: TaskView[], now: number, filesystem: FilesystemUsage | undefined, policy: GcPolicy): Eviction[] {
  const evictions: Eviction[] = [];
  // A persistent task goes at its expiry and only then: neither the TTL nor a watermark touches it before.
  for (const task of tasks)
    if (!task.busy && task.expiresAt !== undefined && now >= task.expiresAt)
      evictions.push(evictionOf(task, "expired", `persistent cache task expired ${formatAge(now - task.expiresAt)} ago`));
  const idle = tasks.filter((t) => !t.busy && t.expiresAt === undefined);
  for (const task of idle) {
    const age = now - task.lastAccessedAt;
    if (age >= policy.taskTtlMs) evictions.push(evictionOf(task, "ttl", `not accessed for ${formatAge(age)} (ttl ${formatAge(policy.taskTtlMs)})`));
  }
  const lru = leastRecentlyUsed(idle.filter((t) => !evictions.some((e) => e.taskId === t.taskId) && t.bytes > 0));
  const freed = (): number => evictions.reduce((sum, e) => sum + e.bytes, 0);
  if (policy.quotaBytes > 0) {
    const cacheBytes = tasks.reduce((sum, t) => sum + t.bytes, 0) - freed();
    const detail = `cache holds ${formatBytes(cacheBytes)}, above ${policy.highWatermark}% of the ${formatBytes(policy.quotaBytes)} quota`;
    if (cacheBytes > (policy.quotaBytes * policy.highWatermark) / 100)
      evictions.push(...evictDown(lru, cacheBytes - (policy.quotaBytes * policy.lowWatermark) / 100, "quota", detail));
  }
  if (policy.quotaBytes === 0 && filesystem && filesystem.size > 0) {
    const used = filesystem.used - freed();
    const percent = Math.round((used / filesystem.size) * 100);
    const detail = `filesystem ${percent}% full, above the ${policy.highWatermark}% watermark`;
    if (used > (filesystem.size * policy.highWatermark) / 100)
      evictions.push(...evictDown(lru, used - (filesystem.size * policy.lowWatermark) / 100, "watermark", detail));
  }
  return evictions;
}

/** Room for `bytes` more bytes of one task: the idle tasks to evict first, or why there is none. */
export type RoomPlan = { evictions: Eviction[] } | { error: string };

/**
 * Admission of a task whose length just became known. Under a quota the
 * cache's committed bytes (every task at its full length) plus this task
 * must fit; on the filesystem, its missing bytes must fit what is free.
 * Idle tasks are evicted, least recently used first, to make room.
 */
export function planRoom(tasks: TaskView[], taskId: string, bytes: number, filesystem: FilesystemUsage | undefined, policy: GcPolicy): RoomPlan {
  const self = tasks.find((t) => t.taskId === taskId);
  const others = tasks.filter((t) => t.taskId !== taskId);
  const lru = leastRecentlyUsed(others.filter((t) => !t.busy && t.expiresAt === undefined));
  const evictions: Eviction[] = [];
  if (policy.quotaBytes > 0) {
    const needed = (self?.bytes ?? 0) + bytes;
    if (needed > policy.quotaBytes)
      return { error: `the task needs ${formatBytes(needed)}, more than the whole ${formatBytes(policy.quotaBytes)} cache quota (diskQuota)` };
    const committed = others.reduce((sum, t) => sum + t.footprint, 0);
    const over = committed + needed - policy.quotaBytes;
    const detail = `making room for ${formatBytes(bytes)} under the ${formatBytes(policy.quotaBytes)} quota`;
    evictions.push(...evictDown(lru, over, "quota", detail, (t) => t.footprint));
    if (evictions.reduce((sum, e) => sum + footprintOf(tasks, e), 0) < over)
      return { error: `the ${formatBytes(policy.quotaBytes)} cache quota (diskQuota) is taken by tasks in use; ${formatBytes(bytes)} more do not fit` };
  }
  if (filesystem) {
    const short = bytes - filesystem.available - evictions.reduce((sum, e) => sum + e.bytes, 0);
    const detail = `making room for ${formatBytes(bytes)}: the filesystem has ${formatBytes(filesystem.available)} free`;
    const more = evictDown(
      lru.filter((t) => !evictions.some((e) => e.taskId === t.taskId)),
      short,
      "watermark",
      detail,
    );
    if (more.reduce((sum, e) => sum + e.bytes, 0) < short)
      return { error: `the disk is full: the task needs ${formatBytes(bytes)} more, the filesystem has ${formatBytes(filesystem.available)} free` };
    evictions.push(...more);
  }
  return { evictions };
}

function evictDown(lru: TaskView[], excess: number, reason: EvictionReason, detail: string, sizeOf: (t: TaskView) => number = (t) => t.bytes): Eviction[] {
  const out: Eviction[] = [];
  let left = excess;
  while (left > 0 && lru.length > 0) {
    const task = lru.shift()!;
    out.push(evictionOf(task, reason, `${detail}; least recently used`));
    left -= sizeOf(task);
  }
  return out;
}

function footprintOf(tasks: TaskView[], eviction: Eviction): number {
  return tasks.find((t) => t.taskId === eviction.taskId)?.footprint ?? eviction.bytes;
}

function leastRecentlyUsed(tasks: TaskView[]): TaskView[] {
  return [...tasks].sort((a, b) => a.lastAccessedAt - b.lastAccessedAt || a.taskId.localeCompare(b.taskId));
}

function evictionOf(task: TaskView, reason: EvictionReason, detail: string): Eviction {
  return { taskId: task.taskId, url: task.url, bytes: task.bytes, lastAccessedAt: task.lastAccessedAt, finished: task.finished, reason, detail };
}

/** "7h30m", "2d3h", "45s": the two largest units. */
export function formatAge(ms: number): string {
  const units: Array<[string, number]> = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ];
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`;
  const parts: string[] = [];
  let left = ms;
  for (const [name, size] of units) {
    const count = Math.floor(left / size);
    left -= count * size;
    if (count > 0 || parts.length > 0) parts.push(`${count}${name}`);
    if (parts.length === 2) break;
  }
  return parts.filter((p) => !p.startsWith("0")).join("");
}
