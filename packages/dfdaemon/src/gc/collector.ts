import { EventEmitter } from "node:events";
import { ErrorCode, errorMessage, type Logger } from "@lacewing/common";
import type { Counter } from "prom-client";
import { daemonError } from "../errors.js";
import type { StoredTask } from "../storage/stored-task.js";
import type { TaskStore } from "../storage/task-store.js";
import { systemClock, type Clock } from "./clock.js";
import { diskUsageOf } from "./disk-usage.js";
import { planEvictions, planRoom, type Eviction, type EvictionReason, type FilesystemUsage, type GcPolicy, type TaskView } from "./eviction-policy.js";

export interface CollectorOptions {
  store: TaskStore;
  /** True while a download fills the task (TaskManager.isActive). */
  isDownloading: (taskId: string) => boolean;
  policy: GcPolicy;
  intervalMs: number;
  log: Logger;
  /** `lacewing_dfdaemon_evictions_total`. */
  evictions: Counter<"reason">;
  /** Called after each eviction; the daemon reports it to the scheduler (DeleteTask). */
  onEvicted: (taskId: string, reason: EvictionReason) => void;
  clock?: Clock;
  /** The filesystem holding the cache; defaults to statfs of the store's directory. */
  filesystem?: () => Promise<FilesystemUsage | undefined>;
}

/** One pass of the collector, as the local API's Gc reports it. */
export interface GcReport {
  dryRun: boolean;
  evictions: Eviction[];
  cacheBytes: number;
  filesystem: FilesystemUsage | undefined;
  taskCount: number;
  busyTaskCount: number;
}

/**
 * The node cache collector: every `intervalMs` it plans evictions
 * (`planEvictions`) and removes the planned tasks that are still idle. It
 * also makes room for a task whose length becomes known (`reserve`), and
 * evicts single tasks on request (`evict`). Passes run one at a time.
 */
export class CacheCollector extends EventEmitter<{
  /** After each scheduled pass, once the next one is scheduled. */
  collected: [GcReport];
}> {
  readonly #options: CollectorOptions;
  readonly #clock: Clock;
  #timer: { clear(): void } | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Passes started, dry runs included. */
  passes = 0;

  constructor(options: CollectorOptions) {
    super();
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  start(): void {
    this.#schedule();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.clear();
    await this.#queue.catch(() => undefined);
  }

  /** Runs a pass now (after any pass in progress). A dry run only plans. */
  collect(options: { dryRun?: boolean } = {}): Promise<GcReport> {
    return this.#serial(() => this.#pass(options.dryRun === true));
  }

  /**
   * Evicts one task on request; refused with LW_ERR_TASK_BUSY while it is
   * downloaded or read.
   */
  evict(taskId: string, reason: EvictionReason = "manual"): Promise<Eviction> {
    return this.#serial(async () => {
      const task = this.#options.store.get(taskId);
      if (!task) throw daemonError(ErrorCode.taskNotFound, "not_found", `task ${taskId} is not in this daemon's cache`);
      const eviction = { ...this.#evictionOf(task), reason, detail: "asked for" };
      const removal = this.#remove(eviction);
      if (!removal) throw busyError(taskId, this.#options.isDownloading(taskId) ? "being downloaded" : "being read");
      await removal;
      return eviction;
    });
  }

  /** A `Reserve` for the store: evicts idle tasks to fit `bytes` more of `task`, or fails with LW_ERR_DISK_FULL. */
  readonly reserve = (task: StoredTask, bytes: number): Promise<void> =>
    this.#serial(async () => {
      const filesystem = await this.#filesystem();
      const plan = planRoom(this.#views(), task.taskId, bytes, filesystem, this.#options.policy);
      if ("error" in plan) throw daemonError(ErrorCode.diskFull, "resource_exhausted", plan.error);
      // Planned and removed in one synchronous step: the tasks are still idle.
      await Promise.all(plan.evictions.map((e) => this.#remove(e)));
    });

  /** True while the task is downloaded or read; such a task is never evicted. */
  isBusy(task: StoredTask): boolean {
    return task.activeReaders > 0 || this.#options.isDownloading(task.taskId);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.collect().then(
        (report) => {
          this.#schedule();
          this.emit("collected", report);
        },
        (err: unknown) => {
          this.#options.log.warn({ err: errorMessage(err) }, "cache collection failed");
          this.#schedule();
        },
      );
    }, this.#options.intervalMs);
  }

  async #pass(dryRun: boolean): Promise<GcReport> {
    this.passes++;
    const { store, policy, log } = this.#options;
    if (!dryRun) await Promise.all(store.all().map((t) => t.persistAccessTime().catch(() => undefined)));
    const filesystem = await this.#filesystem();
    const views = this.#views();
    const planned = planEvictions(views, this.#clock.now(), filesystem, policy);
    const report: GcReport = {
      dryRun,
      evictions: planned,
      cacheBytes: views.reduce((sum, t) => sum + t.bytes, 0),
      filesystem,
      taskCount: views.length,
      busyTaskCount: views.filter((t) => t.busy).length,
    };
    if (!dryRun) {
      // Every check-and-remove happens before the first await, so the plan cannot go stale between them.
      const removals = planned.map((e) => [e, this.#remove(e)] as const);
      await Promise.all(removals.map(([, r]) => r));
      report.evictions = removals.filter(([, r]) => r !== undefined).map(([e]) => e);
      if (report.evictions.length > 0)
        log.info({ evicted: report.evictions.length, bytes: report.evictions.reduce((sum, e) => sum + e.bytes, 0) }, "cache collected");
    }
    return report;
  }

  /**
   * Removes the task if it is idle, checking and leaving the store in one
   * synchronous step: a reader that looks the task up afterwards does not
   * find it, and one that found it before is counted as busy. Undefined
   * when the task is busy or already gone.
   */
  #remove(eviction: Eviction): Promise<void> | undefined {
    const { store, log } = this.#options;
    const task = store.get(eviction.taskId);
    if (!task || this.isBusy(task)) return undefined;
    const removal = store.delete(eviction.taskId);
    this.#options.evictions.inc({ reason: eviction.reason });
    log.info({ taskId: eviction.taskId, reason: eviction.reason, bytes: eviction.bytes, detail: eviction.detail }, "task evicted");
    try {
      this.#options.onEvicted(eviction.taskId, eviction.reason);
    } catch (err) {
      log.warn({ taskId: eviction.taskId, err: errorMessage(err) }, "eviction report failed");
    }
    return removal.catch((err: unknown) => log.warn({ taskId: eviction.taskId, err: errorMessage(err) }, "cannot remove evicted task files"));
  }

  #views(): TaskView[] {
    return this.#options.store.all().map((task) => this.#viewOf(task));
  }

  #evictionOf(task: StoredTask): Omit<Eviction, "reason" | "detail"> {
    return { taskId: task.taskId, url: task.url, bytes: task.completedBytes, lastAccessedAt: task.lastAccessedAt, finished: task.finished };
  }

  #viewOf(task: StoredTask): TaskView {
    return { ...this.#evictionOf(task), footprint: footprintOf(task), busy: this.isBusy(task), expiresAt: task.persistent?.expiresAt };
  }

  async #filesystem(): Promise<FilesystemUsage | undefined> {
    try {
      return await (this.#options.filesystem ?? (() => diskUsageOf(this.#options.store.root)))();
    } catch (err) {
      this.#options.log.warn({ err: errorMessage(err) }, "cannot measure the cache filesystem");
      return undefined;
    }
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function footprintOf(task: StoredTask): number {
  return task.lengthKnown ? Math.max(task.contentLength, task.completedBytes) : task.completedBytes;
}

function busyError(taskId: string, what: string): Error {
  return daemonError(ErrorCode.taskBusy, "failed_precondition", `task ${taskId} is ${what}; it cannot be evicted now, try again later`);
}
