import type { MessageInitShape, TaskInfoSchema } from "@lacewing/api";
import type { StoredTask } from "../storage/stored-task.js";

/** What a stored task tells peers and schedulers about its content. */
export function taskInfoOf(task: StoredTask): MessageInitShape<typeof TaskInfoSchema> {
  return {
    taskId: task.taskId,
    contentLength: BigInt(task.meta.contentLength),
    pieceLength: BigInt(task.meta.pieceLength),
    totalPieces: task.totalPieces,
    digest: task.meta.digest,
  };
}
