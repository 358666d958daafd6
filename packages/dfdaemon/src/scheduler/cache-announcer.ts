import { errorMessage, newPeerId, rendezvousPick, type Logger } from "@lacewing/common";
import { AnnounceStream } from "../p2p/announce-stream.js";
import type { TaskStore } from "../storage/task-store.js";
import type { SchedulerPool } from "./scheduler-pool.js";

export interface CacheAnnouncement {
  pool: SchedulerPool;
  store: TaskStore;
  hostId: string;
  /** The scheduler that just learned of this host. */
  endpoint: string;
  log: Logger;
}

/** Longest wait for the scheduler to acknowledge one task. */
const ANSWER_TIMEOUT_MS = 30_000;
/** Announcements in flight at once, so a large cache does not flood a restarted scheduler. */
const CONCURRENCY = 8;

/**
 * Tells a scheduler which finished tasks this host holds, for the tasks it
 * owns, so they are handed out as parents again after the daemon or the
 * scheduler restarted. Each task is one short AnnouncePeer stream: register
 * as complete, read task_complete, close.
 */
export async function announceCachedTasks({ pool, store, hostId, endpoint, log }: CacheAnnouncement): Promise<number> {
  const endpoints = pool.endpoints;
  const tasks = store.all().filter((task) => task.finished && !task.closed && rendezvousPick(task.taskId, endpoints) === endpoint);
  let announced = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      const stream = new AnnounceStream(endpoint, pool.client(endpoint), { hostId, taskId: task.taskId, peerId: newPeerId(hostId, task.taskId) });
      const answer = await stream.ask(
        {
          case: "register",
          value: {
            download: { url: task.url, digest: task.digest },
            complete: true,
            taskInfo: task.info(),
            // A restarted scheduler has no digests; these are the ones this node verified its pieces against.
            pieceSha256: task.pieces().map((piece) => Buffer.from(piece.sha256, "hex")),
          },
        },
        ANSWER_TIMEOUT_MS,
      );
      stream.close();
      if (answer?.case === "taskComplete") announced++;
      else
        log.debug({ taskId: task.taskId, scheduler: endpoint, err: errorMessage(stream.error ?? answer?.case ?? "no answer") }, "cannot announce cached task");
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, tasks.length) }, worker));
  if (tasks.length > 0) log.info({ scheduler: endpoint, tasks: announced }, "announced cached tasks");
  return announced;
}
