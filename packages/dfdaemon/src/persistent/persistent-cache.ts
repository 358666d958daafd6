import { RpcError, type schedulerv1 } from "@lacewing/api";
import {
  ErrorCode,
  checkPersistentCache,
  checkPersistentTaskId,
  errorMessage,
  replicasProblem,
  ttlProblem,
  type Logger,
  type PersistentCacheMeta,
} from "@lacewing/common";
import { persistentSpecOf } from "../download/download-spec.js";
import type { DownloadResult, TaskManager } from "../download/task-manager.js";
import { daemonError } from "../errors.js";
import type { CacheCollector } from "../gc/collector.js";
import { announceTask } from "../scheduler/cache-announcer.js";
import type { SchedulerPool } from "../scheduler/scheduler-pool.js";
import type { TaskStore } from "../storage/task-store.js";
import { importFile } from "./import-file.js";

export interface PersistentCacheDeps {
  store: TaskStore;
  tasks: TaskManager;
  collector: CacheCollector;
  pool: Pick<SchedulerPool, "configured" | "ownersOf" | "client">;
  hostId: string;
  log: Logger;
}

/** How long a call to the scheduler may take. */
const SCHEDULER_TIMEOUT_MS = 10_000;

export interface ImportRequest {
  path: string;
  taskId: string;
  replicas: number;
  ttlMs: number;
  pieceLength: number;
}

export interface CacheStat {
  taskId: string;
  local: boolean;
  contentLength: number;
  cache: PersistentCacheMeta | undefined;
  schedulerKnown: boolean;
  holders: string[];
}

/**
 * The daemon's side of dfcache: import a local file as a persistent cache
 * task and announce it, export one from peers, stat and delete, and the
 * scheduler's orders (place a replica, delete a copy). What the scheduler
 * decides (where replicas go, when a task expires everywhere) is in the
 * scheduler's persistent/ folder; this is the I/O around it on a node.
 */
export class PersistentCache {
  readonly #deps: PersistentCacheDeps;

  constructor(deps: PersistentCacheDeps) {
    this.#deps = deps;
  }

  async import(request: ImportRequest): Promise<{ taskId: string; contentLength: number; digest: string; cache: PersistentCacheMeta; announced: boolean }> {
    if (!request.path.startsWith("/")) throw daemonError(ErrorCode.badRequest, "invalid_argument", "path must be absolute");
    const taskId = request.taskId === "" ? undefined : checkPersistentTaskId(request.taskId);
    const replicas = replicasProblem(request.replicas);
    if (replicas !== undefined) throw daemonError(ErrorCode.badRequest, "invalid_argument", `replicas ${replicas}`);
    const ttl = ttlProblem(request.ttlMs);
    if (ttl !== undefined) throw daemonError(ErrorCode.badRequest, "invalid_argument", `ttl ${ttl}`);
    const cache = { replicas: request.replicas, ttlMs: request.ttlMs, expiresAt: Date.now() + request.ttlMs };
    const { task, digest } = await importFile(this.#deps.store, {
      path: request.path,
      taskId,
      cache,
      pieceLength: request.pieceLength,
      isDownloading: (id) => this.#deps.tasks.isActive(id),
    });
    this.#deps.log.info({ taskId: task.taskId, contentLength: task.contentLength, replicas: cache.replicas, ttlMs: cache.ttlMs }, "file imported");
    let announced = false;
    for (const endpoint of this.#deps.pool.configured ? this.#deps.pool.ownersOf(task.taskId) : []) {
      const outcome = await announceTask(this.#deps.pool, endpoint, this.#deps.hostId, task, this.#deps.log);
      if (outcome === "announced") {
        announced = true;
        break;
      }
    }
    return { taskId: task.taskId, contentLength: task.contentLength, digest, cache: task.persistent ?? cache, announced };
  }

  /** Places the task at `outputPath`: from this node's copy, or from peers (never an origin). */
  async export(taskIdText: string, outputPath: string, timeoutMs: number, signal: AbortSignal): Promise<DownloadResult> {
    const taskId = checkPersistentTaskId(taskIdText);
    if (!outputPath.startsWith("/")) throw daemonError(ErrorCode.badRequest, "invalid_argument", "output_path must be absolute");
    const local = this.#deps.store.get(taskId);
    let cache = local?.finished === true ? local.persistent : undefined;
    if (cache === undefined) {
      const remote = await this.#statRemote(taskId);
      if (remote?.persistent?.cache === undefined) throw notFound(taskId);
      cache = checkPersistentCache(remote.persistent.cache, Date.now(), "scheduler's persistent");
    }
    return this.#deps.tasks.download(persistentSpecOf(taskId, cache, { outputPath, timeoutMs, triggered: false }), { signal });
  }

  async stat(taskIdText: string): Promise<CacheStat> {
    const taskId = checkPersistentTaskId(taskIdText);
    const local = this.#deps.store.get(taskId);
    const remote = await this.#statRemote(taskId).catch((err: unknown) => {
      this.#deps.log.debug({ taskId, err: errorMessage(err) }, "cannot stat the persistent task at its scheduler");
      return undefined;
    });
    const remoteCache = remote?.persistent?.cache;
    if (local?.persistent === undefined && remoteCache === undefined) throw notFound(taskId);
    const contentLength = local?.lengthKnown === true ? local.contentLength : Number(remote?.info?.contentLength ?? -1n);
    return {
      taskId,
      local: local?.finished === true,
      contentLength,
      cache:
        local?.persistent ??
        (remoteCache === undefined
          ? undefined
          : { replicas: remoteCache.replicas, expiresAt: Number(remoteCache.expiresAtMs), ttlMs: Number(remoteCache.ttlMs) }),
      schedulerKnown: remote?.persistent !== undefined,
      holders: remote?.persistent?.holderHostIds ?? [],
    };
  }

  /** Removes the task everywhere: the scheduler orders every holder to delete it; this node's copy goes too. */
  async delete(taskIdText: string): Promise<{ holders: number; local: boolean }> {
    const taskId = checkPersistentTaskId(taskIdText);
    let holders: number | undefined;
    for (const endpoint of this.#deps.pool.configured ? this.#deps.pool.ownersOf(taskId) : []) {
      try {
        holders = (await this.#deps.pool.client(endpoint).deletePersistentTask({ taskId }, { timeoutMs: SCHEDULER_TIMEOUT_MS })).holders;
        break;
      } catch (err) {
        if (err instanceof RpcError && err.code === ErrorCode.cacheNotFound) continue;
        if (err instanceof RpcError && err.transport) continue;
        throw err;
      }
    }
    // Removed like the scheduler's order to this node (which may get here first): retried while the copy is read.
    const local = this.#deps.store.get(taskId)?.persistent !== undefined && this.deleteOrdered(taskId);
    if (holders === undefined && !local) throw notFound(taskId);
    return { holders: holders ?? 0, local };
  }

  /** The scheduler ordered a replica: download it from peers, keep it with the metadata it sent. */
  placeReplica(taskIdText: string, message: { replicas: number; expiresAtMs: bigint; ttlMs: bigint } | undefined): void {
    const taskId = checkPersistentTaskId(taskIdText, "persistent_task_id");
    const cache = checkPersistentCache(message, Date.now());
    this.#deps.tasks.download(persistentSpecOf(taskId, cache, { outputPath: "", timeoutMs: 0, triggered: true }), {}).then(
      () => this.#deps.log.info({ taskId }, "persistent task replica placed"),
      (err: unknown) => this.#deps.log.warn({ taskId, err: errorMessage(err) }, "persistent task replica failed"),
    );
  }

  /**
   * The scheduler ordered this copy removed (deleted or expired). A copy
   * being read is removed once its readers are done (retried every second
   * for a minute). Reported back to the schedulers as any eviction is.
   */
  deleteOrdered(taskIdText: string): boolean {
    const taskId = checkPersistentTaskId(taskIdText);
    if (this.#deps.store.get(taskId) === undefined) return false;
    const attempt = (left: number): void => {
      if (this.#deps.store.get(taskId) === undefined) return;
      this.#deps.collector.evict(taskId, "deleted").catch((err: unknown) => {
        if (left > 0 && err instanceof Error && "code" in err && err.code === ErrorCode.taskBusy) setTimeout(() => attempt(left - 1), 1_000).unref();
        else this.#deps.log.warn({ taskId, err: errorMessage(err) }, "cannot delete the persistent task as the scheduler ordered");
      });
    };
    attempt(60);
    return true;
  }

  async #statRemote(taskId: string): Promise<schedulerv1.StatTaskResponse | undefined> {
    if (!this.#deps.pool.configured) return undefined;
    for (const endpoint of this.#deps.pool.ownersOf(taskId)) {
      try {
        return await this.#deps.pool.client(endpoint).statTask({ taskId }, { timeoutMs: SCHEDULER_TIMEOUT_MS });
      } catch (err) {
        if (err instanceof RpcError && (err.code === ErrorCode.taskNotFound || err.transport)) continue;
        throw err;
      }
    }
    return undefined;
  }
}

function notFound(taskId: string): Error {
  return daemonError(ErrorCode.cacheNotFound, "not_found", `no persistent cache task ${taskId} is known (never imported, deleted, or expired)`);
}
