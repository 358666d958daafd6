import { EventEmitter, setMaxListeners } from "node:events";
import { ErrorCode, deferred, errorMessage, formatDigest, isAbortError, isLacewingError, parseDigest, type Digest, type Logger } from "@lacewing/common";
import type { TaskStore } from "../storage/task-store.js";
import type { StoredTask } from "../storage/stored-task.js";
import { daemonError } from "../errors.js";
import { taskIdOfSpec, type DownloadSpec } from "./download-spec.js";
import type { TaskFiller } from "./task-filler.js";
import { placeOutput } from "./place-output.js";
import type { DfdaemonMetrics } from "../metrics.js";
import { PieceLedger } from "./piece-ledger.js";

export type { DownloadSpec } from "./download-spec.js";

export interface Traffic {
  fromOrigin: number;
  fromPeers: number;
  fromCache: number;
}

export interface DownloadResult {
  taskId: string;
  contentLength: number;
  digest: string;
  outputPath: string;
  traffic: Traffic;
  elapsedMs: number;
}

/** How far a download is, in bytes and pieces. */
export interface DownloadProgress {
  completedBytes: number;
  contentLength: number;
  completedPieces: number;
  totalPieces: number;
}

export interface DownloadHooks {
  /** Abandons this caller's wait only; the run goes on for others. */
  signal?: AbortSignal;
  onStart?: (taskId: string, contentLength: number) => void;
  onProgress?: (p: DownloadProgress) => void;
}

/** One fetch of one task, shared by every caller that asks for it meanwhile; it fetches with its first caller's options. */
class TaskRun extends EventEmitter<{ progress: [DownloadProgress] }> {
  readonly ledger: PieceLedger;
  readonly spec: DownloadSpec;
  done!: Promise<StoredTask>;
  /** Settles once the task exists in the store (or the run failed before). */
  readonly created = deferred<StoredTask>();

  constructor(spec: DownloadSpec, metrics: DfdaemonMetrics) {
    super();
    this.spec = spec;
    this.ledger = new PieceLedger(metrics);
  }
}

/** A task being filled, for readers that stream pieces as they land. */
export interface OpenTask {
  task: StoredTask;
  /** Settles when the task is complete (or failed). */
  done: Promise<StoredTask>;
}

export interface TaskManagerOptions {
  store: TaskStore;
  log: Logger;
  metrics: DfdaemonMetrics;
  /** Where pieces come from: the origin only, or peers with the origin as fallback. */
  fill: TaskFiller;
  /** Temp files beside an output older than this are a crashed run's leftovers (config `outputTempTtl`). */
  outputTempTtlMs: number;
  /**
   * Completes a spec before its task id is derived (an s3:// object's version
   * is pinned: source/s3-source.ts); identity when absent.
   */
  pin?: (spec: DownloadSpec, signal: AbortSignal | undefined) => Promise<DownloadSpec>;
}

/**
 * Turns download requests into finished tasks. Concurrent requests for one
 * task share one run (the origin is asked once); a finished task is served
 * from the cache.
 */
export class TaskManager {
  readonly #options: TaskManagerOptions;
  readonly #runs = new Map<string, TaskRun>();
  #callers = 0;
  readonly #closing = new AbortController();

  constructor(options: TaskManagerOptions) {
    this.#options = options;
    // Every piece request in flight listens on it; dozens at once are normal.
    setMaxListeners(0, this.#closing.signal);
  }

  /** Callers waiting in download() now; several may share one run. */
  get activeDownloads(): number {
    return this.#callers;
  }

  /** Tasks being filled now (one run each, however many callers wait on it). */
  get activeRuns(): number {
    return this.#runs.size;
  }

  /**
   * Downloads `spec` and places it at its output path. `onStart` reports
   * once, as soon as the task exists (its length may still be unknown: -1),
   * and `onProgress` as pieces land; `signal` abandons this caller's wait only.
   */
  async download(spec: DownloadSpec, hooks: DownloadHooks): Promise<DownloadResult> {
    this.#callers++;
    let started = false;
    const once: DownloadHooks = {
      ...hooks,
      onStart: (taskId, contentLength) => {
        if (started) return;
        started = true;
        hooks.onStart?.(taskId, contentLength);
      },
    };
    try {
      const pinned = this.#options.pin === undefined ? spec : await this.#options.pin(spec, hooks.signal);
      const result = await this.#download(pinned, once);
      this.#options.metrics.downloads.inc({ result: "succeeded" });
      return result;
    } catch (err) {
      this.#options.metrics.downloads.inc({ result: isLacewingError(err) && err.kind === "cancelled" ? "cancelled" : "failed" });
      throw err;
    } finally {
      this.#callers--;
    }
  }

  async #download(spec: DownloadSpec, hooks: DownloadHooks, attempt = 0): Promise<DownloadResult> {
    const started = Date.now();
    const taskId = taskIdOfSpec(spec);
    const expected = spec.digest ? parseDigest(spec.digest) : undefined;
    const signals = [hooks.signal, spec.timeoutMs > 0 ? AbortSignal.timeout(spec.timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;

    const cached = this.#options.store.get(taskId);
    if (cached?.finished) {
      // An output hard-linked to it and edited in place changes it too: re-verified before it counts as a cache hit.
      await cached.verifyIfChanged();
      if (!cached.finished) this.#options.log.warn({ taskId }, "cached data changed on disk; fetching the changed pieces again");
    }
    let task: StoredTask;
    let traffic: Traffic;
    if (cached?.finished) {
      // A copy fetched as an ordinary task (or before an import renewed it) becomes persistent with the metadata asked for.
      if (spec.persistent !== undefined && cached.persistent?.expiresAt !== spec.persistent.cache.expiresAt) await cached.setPersistent(spec.persistent.cache);
      hooks.onStart?.(taskId, cached.contentLength);
      task = cached;
      traffic = { fromOrigin: 0, fromPeers: 0, fromCache: cached.contentLength };
      this.#options.metrics.downloadBytes.inc({ source: "cache" }, cached.contentLength);
    } else {
      const run = this.#runFor(taskId, spec);
      // Before any progress: the task exists a moment after the run starts, long before it ends.
      run.created.promise.then(
        (created) => {
          hooks.onStart?.(taskId, created.contentLength);
          // A resumed task (kept across a restart, or joined midway) reports what it holds at once, so progress carries on from there.
          if (created.pieceCount > 0) hooks.onProgress?.(progressOf(created));
        },
        () => undefined,
      );
      const report = (p: DownloadProgress): void => hooks.onProgress?.(p);
      run.on("progress", report);
      try {
        task = await abortable(run.done, signal, spec.timeoutMs);
      } catch (err) {
        // A run started by another caller failed for a reason this caller's own options may not have: it gets its own run.
        if (run.spec !== spec && ownOptionsMayHelp(spec, run.spec, err) && attempt < 2) {
          this.#options.log.info({ taskId, err: errorMessage(err) }, "joined download failed with another caller's options; trying with this caller's");
          return this.#download(spec, hooks, attempt + 1);
        }
        throw err;
      } finally {
        run.off("progress", report);
      }
      // What this run did not fetch it already held (pieces kept across a restart or an earlier failed run): the cache's.
      const fetched = run.ledger.traffic.fromOrigin + run.ledger.traffic.fromPeers;
      traffic = { ...run.ledger.traffic, fromCache: Math.max(0, task.contentLength - fetched) };
    }
    // Counted in synchronously once found: the collector cannot evict it while it is verified and placed.
    const release = task.acquire();
    if (!release) {
      // Evicted between its run finishing and here (a cache under heavy pressure): fetch it again, a bounded number of times.
      if (attempt >= 2)
        throw daemonError(ErrorCode.diskFull, "resource_exhausted", `task ${taskId} was evicted before it could be placed: the cache is too small for it`);
      return this.#download(spec, hooks, attempt + 1);
    }
    let digest = "";
    let placed = true;
    try {
      if (expected) {
        // The run checked its own caller's digest; a caller expecting another one (or a cache hit) is checked here.
        const mismatch = await digestMismatch(task, expected);
        if (mismatch !== undefined) {
          await this.#options.store.delete(taskId);
          throw mismatch;
        }
        digest = formatDigest(expected);
      }
      const staleTempMs = this.#options.outputTempTtlMs;
      if (spec.outputPath) placed = await task.placeData((dataPath) => placeOutput(dataPath, spec.outputPath, { staleTempMs }));
      if (placed) await task.touch();
    } finally {
      release();
    }
    if (!placed) {
      // Its data changed on disk and lost pieces just before placement: fetch them again, a bounded number of times.
      if (attempt >= 2) throw daemonError(ErrorCode.storage, "internal", `the cached data of task ${taskId} keeps changing on disk`);
      return this.#download(spec, hooks, attempt + 1);
    }
    return { taskId, contentLength: task.contentLength, digest, outputPath: spec.outputPath, traffic, elapsedMs: Date.now() - started };
  }

  /** True while a run fills the task; such a task must not be evicted. */
  isActive(taskId: string): boolean {
    return this.#runs.has(taskId);
  }

  /**
   * Starts (or joins) the run of `spec`'s task and resolves as soon as the
   * task exists in the store, so a caller can stream its pieces in order as
   * they land (the registry mirror does). A finished cached task resolves at
   * once. The caller should count itself in with `task.acquire()` while it reads.
   */
  async open(spec: DownloadSpec): Promise<OpenTask> {
    const taskId = taskIdOfSpec(spec);
    const cached = this.#options.store.get(taskId);
    if (cached?.finished) return { task: cached, done: Promise.resolve(cached) };
    const run = this.#runFor(taskId, spec);
    return { task: await run.created.promise, done: run.done };
  }

  #runFor(taskId: string, spec: DownloadSpec): TaskRun {
    const existing = this.#runs.get(taskId);
    if (existing) {
      if (spec.disableBackToSource === true && existing.spec.disableBackToSource !== true)
        this.#options.log.info(
          { taskId },
          "joined a download that may fetch from the origin for another caller: back-to-source disabled here means this download makes no origin fetch of its own",
        );
      return existing;
    }
    const run = new TaskRun(spec, this.#options.metrics);
    this.#runs.set(taskId, run);
    run.done = this.#fetch(taskId, spec, run).finally(() => this.#runs.delete(taskId));
    // Callers await run.done; this keeps an abandoned run from being an unhandled rejection.
    run.done.catch((err: unknown) => run.created.reject(err));
    run.created.promise.catch(() => undefined);
    return run;
  }

  async #fetch(taskId: string, spec: DownloadSpec, run: TaskRun): Promise<StoredTask> {
    const { store, log } = this.#options;
    const task =
      store.get(taskId) ??
      (await store.create({
        taskId,
        url: spec.persistent === undefined ? stripQuery(spec.url) : spec.url,
        contentLength: -1,
        pieceLength: spec.pieceLength,
        digest: spec.digest,
        finished: false,
        createdAt: Date.now(),
        lastAccessedAt: Date.now(),
        ...(spec.persistent === undefined ? {} : { persistent: spec.persistent.cache }),
      }));
    run.created.resolve(task);
    run.ledger.on("piece", () => run.emit("progress", progressOf(task)));
    try {
      const expected = spec.digest ? parseDigest(spec.digest) : undefined;
      await this.#options.fill({
        task,
        spec,
        signal: this.#closing.signal,
        verify: async () => {
          const mismatch = expected === undefined ? undefined : await digestMismatch(task, expected);
          if (mismatch !== undefined) throw mismatch;
        },
        ledger: run.ledger,
      });
      await task.markFinished();
      log.info({ taskId, contentLength: task.contentLength, ...run.ledger.traffic }, "task finished");
      return task;
    } catch (err) {
      log.warn({ taskId, err: errorMessage(err) }, "task failed");
      if (!isAbortError(err)) await store.delete(taskId).catch(() => undefined);
      throw err;
    }
  }

  close(): void {
    this.#closing.abort();
  }
}

function progressOf(task: StoredTask): DownloadProgress {
  return { completedBytes: task.completedBytes, contentLength: task.contentLength, completedPieces: task.pieceCount, totalPieces: task.totalPieces };
}

/**
 * Whether a joining caller might succeed where the run it joined failed:
 * the run was not allowed back to source and this caller is, or the origin
 * refused the run's request headers and this caller sends others.
 */
function ownOptionsMayHelp(joiner: DownloadSpec, first: DownloadSpec, err: unknown): boolean {
  if (!isLacewingError(err)) return false;
  if (err.code === ErrorCode.noSource) return first.disableBackToSource === true && joiner.disableBackToSource !== true;
  if (err.code === ErrorCode.originStatus && err.details["retryable"] !== true) return !sameHeaders(joiner.requestHeaders, first.requestHeaders);
  if (err.code === ErrorCode.objectAccessDenied)
    return (
      joiner.objectStorage?.accessKeyId !== first.objectStorage?.accessKeyId || joiner.objectStorage?.secretAccessKey !== first.objectStorage?.secretAccessKey
    );
  return false;
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const canonical = (headers: Record<string, string>): string =>
    JSON.stringify(
      Object.entries(headers)
        .map(([name, value]) => [name.toLowerCase(), value])
        .sort(),
    );
  return canonical(a) === canonical(b);
}

/** The LW_ERR_DIGEST_MISMATCH error when the task's content is not `expected`, with both digests as details. */
async function digestMismatch(task: StoredTask, expected: Digest): Promise<Error | undefined> {
  const actual = await task.contentDigest(expected.algorithm);
  const wanted = formatDigest(expected);
  if (actual === wanted) return undefined;
  return daemonError(ErrorCode.digestMismatch, "failed_precondition", `digest mismatch: expected ${wanted}, got ${actual}`, undefined, {
    expected: wanted,
    actual,
  });
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, timeoutMs: number): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      const reason: unknown = signal.reason;
      if (reason instanceof Error && reason.name === "TimeoutError")
        reject(daemonError(ErrorCode.timeout, "deadline_exceeded", `download timed out after ${timeoutMs} ms`));
      else reject(daemonError(ErrorCode.cancelled, "cancelled", "download cancelled"));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function stripQuery(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}
