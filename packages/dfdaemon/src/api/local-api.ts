import type { dfdaemonv1 } from "@lacewing/api";
import { type ServiceImpl, type MessageInitShape } from "@lacewing/api";
import { ErrorCode, AsyncQueue } from "@lacewing/common";
import type { TaskManager } from "../download/task-manager.js";
import { downloadSpecOf, taskIdOfSpec } from "../download/download-spec.js";
import type { SchedulerState } from "../scheduler/scheduler-pool.js";
import type { TaskStore } from "../storage/task-store.js";
import { daemonError } from "../errors.js";
import type { CacheCollector } from "../gc/collector.js";
import type { GcPolicy } from "../gc/eviction-policy.js";
import { gcResponseOf } from "./gc-response.js";
import type { PersistentCache } from "../persistent/persistent-cache.js";
import { persistentCacheMessageOf, MAX_TIMER_MS } from "@lacewing/common";

type DownloadResponse = MessageInitShape<typeof dfdaemonv1.DownloadResponseSchema>;

export interface LocalApiDeps {
  tasks: TaskManager;
  store: TaskStore;
  collector: CacheCollector;
  gcPolicy: GcPolicy;
  hostId: string;
  seed: boolean;
  startedAt: number;
  recentFailures: Array<{ taskId: string; url: string; description: string; atMs: number }>;
  schedulers: () => SchedulerState[];
  persistent: PersistentCache;
}

/** The daemon's unix-socket API for dfget. */
export function localApi(deps: LocalApiDeps): ServiceImpl<typeof dfdaemonv1.DfdaemonDownload> {
  return {
    download(request, context) {
      const spec = downloadSpecOf(request.download);
      const events = new AsyncQueue<DownloadResponse>();
      let lastProgress = 0;
      // The task id as the download named it (an s3:// object's pinned version included), once it started.
      let startedTaskId: string | undefined;
      deps.tasks
        .download(spec, {
          signal: context.signal,
          onStart: (taskId, contentLength) => {
            startedTaskId = taskId;
            events.push({ response: { case: "started", value: { taskId, hostId: deps.hostId, contentLength: BigInt(contentLength) } } });
          },
          onProgress: (p) => {
            const now = Date.now();
            if (now - lastProgress < 100 && p.completedPieces !== p.totalPieces) return;
            lastProgress = now;
            events.push({
              response: {
                case: "progress",
                value: {
                  completedBytes: BigInt(p.completedBytes),
                  contentLength: BigInt(p.contentLength),
                  completedPieces: p.completedPieces,
                  totalPieces: p.totalPieces,
                },
              },
            });
          },
        })
        .then(
          (result) => {
            events.push({
              response: {
                case: "finished",
                value: {
                  taskId: result.taskId,
                  contentLength: BigInt(result.contentLength),
                  digest: result.digest,
                  outputPath: result.outputPath,
                  elapsedMs: BigInt(result.elapsedMs),
                  traffic: {
                    bytesFromOrigin: BigInt(result.traffic.fromOrigin),
                    bytesFromPeers: BigInt(result.traffic.fromPeers),
                    bytesFromCache: BigInt(result.traffic.fromCache),
                  },
                },
              },
            });
            events.end();
          },
          (err: unknown) => {
            deps.recentFailures.push({
              taskId: startedTaskId ?? taskIdOfSpec(spec),
              url: spec.url.split("?")[0] ?? "",
              description: err instanceof Error ? err.message : String(err),
              atMs: Date.now(),
            });
            if (deps.recentFailures.length > 20) deps.recentFailures.shift();
            events.fail(err);
          },
        );
      return events;
    },

    async statTask(request) {
      const task = deps.store.get(request.taskId);
      if (!task) throw daemonError(ErrorCode.taskNotFound, "not_found", `task ${request.taskId} is not in this daemon's cache`);
      return {
        info: task.info(),
        completedPieces: task.pieceCount,
        finished: task.finished,
        lastAccessedAtMs: BigInt(task.lastAccessedAt),
      };
    },

    async deleteTask(request) {
      // Refused with LW_ERR_TASK_BUSY while the task is downloaded or read; reported to the scheduler like any eviction.
      await deps.collector.evict(request.taskId, "manual");
      return {};
    },

    async importCache(request) {
      const result = await deps.persistent.import({
        path: request.path,
        taskId: request.taskId,
        replicas: request.replicas,
        ttlMs: Number(request.ttlMs),
        pieceLength: Number(request.pieceLength),
      });
      return {
        taskId: result.taskId,
        contentLength: BigInt(result.contentLength),
        digest: result.digest,
        cache: persistentCacheMessageOf(result.cache),
        announced: result.announced,
      };
    },

    async exportCache(request, context) {
      if (request.timeoutMs > BigInt(MAX_TIMER_MS)) throw daemonError(ErrorCode.badRequest, "invalid_argument", `timeout_ms is above ${MAX_TIMER_MS}`);
      const result = await deps.persistent.export(request.taskId, request.outputPath, Number(request.timeoutMs), context.signal);
      return {
        taskId: result.taskId,
        contentLength: BigInt(result.contentLength),
        outputPath: result.outputPath,
        elapsedMs: BigInt(result.elapsedMs),
        traffic: {
          bytesFromOrigin: BigInt(result.traffic.fromOrigin),
          bytesFromPeers: BigInt(result.traffic.fromPeers),
          bytesFromCache: BigInt(result.traffic.fromCache),
        },
      };
    },

    async statCache(request) {
      const stat = await deps.persistent.stat(request.taskId);
      return {
        taskId: stat.taskId,
        local: stat.local,
        contentLength: BigInt(stat.contentLength),
        ...(stat.cache === undefined ? {} : { cache: persistentCacheMessageOf(stat.cache) }),
        schedulerKnown: stat.schedulerKnown,
        replicasHeld: stat.holders.length,
        holderHostIds: stat.holders,
      };
    },

    async deleteCache(request) {
      return deps.persistent.delete(request.taskId);
    },

    async gc(request) {
      return gcResponseOf(await deps.collector.collect({ dryRun: request.dryRun }), deps.gcPolicy);
    },

    async status() {
      const tasks = deps.store.all();
      return {
        hostId: deps.hostId,
        version: "0.1.0",
        seed: deps.seed,
        schedulers: deps.schedulers(),
        cacheBytes: BigInt(tasks.reduce((sum, t) => sum + t.completedBytes, 0)),
        cacheQuotaBytes: BigInt(deps.gcPolicy.quotaBytes),
        taskCount: tasks.length,
        activeDownloads: deps.tasks.activeDownloads,
        recentFailures: deps.recentFailures.map((f) => ({ ...f, atMs: BigInt(f.atMs) })),
        uptimeMs: BigInt(Date.now() - deps.startedAt),
      };
    },
  };
}
