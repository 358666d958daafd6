import { RpcError } from "@lacewing/api";
import { ErrorCode, errorMessage, newPeerId, persistentCacheMessageOf, rendezvousPick, type Logger } from "@lacewing/common";
import { AnnounceStream } from "../p2p/announce-stream.js";
import type { StoredTask } from "../storage/stored-task.js";
import type { TaskStore } from "../storage/task-store.js";
import type { SchedulerPool } from "./scheduler-pool.js";

export interface CacheAnnouncement {
  pool: SchedulerPool;
  store: TaskStore;
  hostId: string;
  /** The scheduler that just learned of this host. */
  endpoint: string;
  log: Logger;
  /** A persistent task's copy the scheduler refused as deleted or expired cluster-wide: the daemon removes it. */
  onDeleted?: (taskId: string) => void;
}

/** Longest wait for the scheduler to acknowledge one task. */
const ANSWER_TIMEOUT_MS = 30_000;
/** Announcements in flight at once, so a large cache does not flood a restarted scheduler. */
const CONCURRENCY = 8;

/** What one announcement came to. */
export type AnnounceOutcome = "announced" | "deleted" | "failed";

/**
 * Registers one finished task with `endpoint` as complete, with its piece
 * digests and, for a persistent cache task, its metadata (replicas, expiry):
 * a short AnnouncePeer stream, register, read task_complete, close.
 */
export async function announceTask(
  pool: Pick<SchedulerPool, "client">,
  endpoint: string,
  hostId: string,
  task: StoredTask,
  log: Logger,
): Promise<AnnounceOutcome> {
  const stream = new AnnounceStream(endpoint, pool.client(endpoint), { hostId, taskId: task.taskId, peerId: newPeerId(hostId, task.taskId) });
  const persistent = task.persistent;
  const answer = await stream.ask(
    {
      case: "register",
      value: {
        download: { url: task.url, digest: task.digest },
        complete: true,
        taskInfo: task.info(),
        // A restarted scheduler has no digests; these are the ones this node verified its pieces against.
        pieceSha256: task.pieces().map((piece) => Buffer.from(piece.sha256, "hex")),
        ...(persistent === undefined ? {} : { persistent: persistentCacheMessageOf(persistent) }),
      },
    },
    ANSWER_TIMEOUT_MS,
  );
  stream.close();
  if (answer?.case === "taskComplete") return "announced";
  if (stream.error instanceof RpcError && stream.error.code === ErrorCode.cacheDeleted) return "deleted";
  log.debug({ taskId: task.taskId, scheduler: endpoint, err: errorMessage(stream.error ?? answer?.case ?? "no answer") }, "cannot announce cached task");
  return "failed";
}

/**
 * Tells a scheduler which finished tasks this host holds, for the tasks it
 * owns, so they are handed out as parents again after the daemon or the
 * scheduler restarted; persistent cache tasks go with their metadata, so a
 * restarted scheduler keeps their replica counts and expiries.
 */
export async function announceCachedTasks({ pool, store, hostId, endpoint, log, onDeleted }: CacheAnnouncement): Promise<number> {
  const endpoints = pool.endpoints;
  const now = Date.now();
  const tasks = store
    .all()
    .filter(
      (task) =>
        task.finished &&
        !task.closed &&
        (task.persistent === undefined || task.persistent.expiresAt > now) &&
        rendezvousPick(task.taskId, endpoints) === endpoint,
    );
  let announced = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      const outcome = await announceTask(pool, endpoint, hostId, task, log);
      if (outcome === "announced") announced++;
      else if (outcome === "deleted") {
        log.info({ taskId: task.taskId }, "persistent task was deleted cluster-wide while this node was away; removing its copy");
        onDeleted?.(task.taskId);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, tasks.length) }, worker));
  if (tasks.length > 0) log.info({ scheduler: endpoint, tasks: announced }, "announced cached tasks");
  return announced;
}
