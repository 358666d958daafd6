import type { MessageInitShape, schedulerv1, TaskInfoSchema } from "@lacewing/api";
import type { ResourceRegistry } from "../resource/resource-registry.js";
import { lengthKnown, type Task } from "../resource/task.js";
import type { ScheduleResult } from "../scheduling/scheduling.js";

export type AnnouncePeerResponseInit = MessageInitShape<typeof schedulerv1.AnnouncePeerResponseSchema>;

export function taskInfoOf(task: Task): MessageInitShape<typeof TaskInfoSchema> {
  return {
    taskId: task.id,
    contentLength: BigInt(task.contentLength),
    pieceLength: BigInt(task.pieceLength),
    totalPieces: task.totalPieces,
    digest: task.digest,
  };
}

/** The wire answer for a scheduling decision. */
export function responseOf(result: ScheduleResult, task: Task, registry: ResourceRegistry): AnnouncePeerResponseInit {
  switch (result.kind) {
    case "empty":
      return { response: { case: "emptyTask", value: {} } };
    case "back_to_source":
      return { response: { case: "needBackToSource", value: { description: result.reason } } };
    case "parents":
      return {
        response: {
          case: "normalTask",
          value: {
            candidateParents: result.parents.map((parent) => {
              const host = registry.hosts.get(parent.hostId);
              return {
                peerId: parent.id,
                ...(host === undefined ? {} : { host: host.info }),
                heldPieceCount: parent.pieces.size,
                finished: parent.state === "succeeded",
              };
            }),
            taskInfo: taskInfoOf(task),
          },
        },
      };
  }
}

/**
 * A task update: when asked, the task's length and digest source (if
 * known), and the digests of `numbers` it holds; undefined when empty.
 */
export function taskUpdateOf(
  task: Task,
  registry: ResourceRegistry,
  withInfo: boolean,
  numbers: Iterable<number>,
): MessageInitShape<typeof schedulerv1.TaskUpdateSchema> | undefined {
  const pieceDigests: Array<{ number: number; sha256: Uint8Array }> = [];
  for (const number of numbers) {
    const sha256 = task.pieceDigests.get(number);
    if (sha256 !== undefined) pieceDigests.push({ number, sha256 });
  }
  const info = withInfo && lengthKnown(task);
  const source = withInfo && task.digestSource !== undefined ? task.peers.get(task.digestSource) : undefined;
  const sourceHost = source === undefined ? undefined : registry.hosts.get(source.hostId);
  if (!info && sourceHost === undefined && pieceDigests.length === 0) return undefined;
  return {
    ...(info ? { taskInfo: taskInfoOf(task) } : {}),
    ...(source !== undefined && sourceHost !== undefined
      ? {
          digestSource: { peerId: source.id, host: sourceHost.info, heldPieceCount: source.pieces.size, finished: source.state === "succeeded" },
          digestSourceSubject: sourceHost.owner?.subject ?? "",
        }
      : {}),
    pieceDigests,
  };
}
