import { schedulerv1, type MessageInitShape } from "@lacewing/api";
import { ErrorCode, LacewingError, redactUrl } from "@lacewing/common";
import type { FlowRecorder } from "../flow/flow-recorder.js";
import type { PeerState } from "../resource/peer.js";
import type { ResourceRegistry } from "../resource/resource-registry.js";
import type { Task } from "../resource/task.js";
import { taskInfoOf } from "./responses.js";
import { checkTaskId } from "./validate.js";

const { TaskState } = schedulerv1;
const PAGE = { default: 500, max: 1000 } as const;

const PEER_STATE: Record<PeerState, schedulerv1.PeerState> = {
  pending: schedulerv1.PeerState.PENDING,
  running: schedulerv1.PeerState.RUNNING,
  back_to_source: schedulerv1.PeerState.BACK_TO_SOURCE,
  succeeded: schedulerv1.PeerState.SUCCEEDED,
  failed: schedulerv1.PeerState.FAILED,
};

/** A task is succeeded once any peer holds all of it, running while one downloads, failed when every peer failed. */
export function taskStateOf(task: Task): schedulerv1.TaskState {
  const peers = [...task.peers.values()];
  if (peers.some((peer) => peer.state === "succeeded")) return TaskState.SUCCEEDED;
  if (peers.some((peer) => peer.state === "running" || peer.state === "back_to_source")) return TaskState.RUNNING;
  if (peers.length > 0 && peers.every((peer) => peer.state === "failed")) return TaskState.FAILED;
  return TaskState.PENDING;
}

/** One page of the tasks the scheduler knows, in task id order, each with its peers and their sources. */
export function listTasksPage(
  registry: ResourceRegistry,
  flow: FlowRecorder,
  request: schedulerv1.ListTasksRequest,
): MessageInitShape<typeof schedulerv1.ListTasksResponseSchema> {
  const pageSize = Math.min(PAGE.max, request.pageSize || PAGE.default);
  const after = request.pageToken === "" ? "" : Buffer.from(request.pageToken, "base64url").toString("utf8");
  if (request.taskId !== "") checkTaskId(request.taskId);
  const ids =
    request.taskId !== "" ? (registry.tasks.has(request.taskId) ? [request.taskId] : []) : [...registry.tasks.keys()].filter((id) => id > after).sort();
  const page = ids.slice(0, pageSize);
  return {
    tasks: page.map((id) => {
      const task = registry.tasks.get(id)!;
      return {
        info: taskInfoOf(task),
        // The manager shows it; a signed URL's credentials are no business of the manager's.
        url: redactUrl(task.url, { filteredQueryParams: task.filteredQueryParams }),
        tag: task.tag,
        application: task.application,
        state: taskStateOf(task),
        createdAtMs: BigInt(task.createdAt),
        peers: [...task.peers.values()].map((peer) => ({
          peerId: peer.id,
          hostId: peer.hostId,
          state: PEER_STATE[peer.state],
          finishedPieces: peer.pieces.size,
          createdAtMs: BigInt(peer.createdAt),
          updatedAtMs: BigInt(peer.updatedAt),
          sources: flow.sourcesOf(task.id, peer.id).map((s) => ({ parentId: s.parentId, bytes: BigInt(s.bytes), pieces: s.pieces })),
        })),
      };
    }),
    nextPageToken: ids.length > pageSize ? Buffer.from(page[page.length - 1]!, "utf8").toString("base64url") : "",
  };
}

/** The task's flow record, landings from `afterSeq` on. */
export function taskFlowOf(flow: FlowRecorder, request: schedulerv1.GetTaskFlowRequest): MessageInitShape<typeof schedulerv1.GetTaskFlowResponseSchema> {
  checkTaskId(request.taskId);
  const record = flow.flowOf(request.taskId);
  if (record === undefined) throw new LacewingError(ErrorCode.taskNotFound, "not_found", `no piece of task ${request.taskId} has landed here recently`);
  const landings = record.landings(Number(request.afterSeq));
  return {
    taskId: record.taskId,
    startedAtMs: BigInt(record.startedAt),
    peers: record.peerIds.map((peerId, i) => ({ peerId, hostId: record.hostIds[i] ?? "" })),
    edges: record.edges().map((edge) => ({ ...edge, bytes: BigInt(edge.bytes) })),
    landingChild: [...landings.child],
    landingParent: [...landings.parent],
    landingPiece: [...landings.piece],
    landingMs: [...landings.ms],
    firstSeq: BigInt(landings.firstSeq),
    droppedLandings: BigInt(landings.dropped),
    droppedPeerLandings: BigInt(record.droppedPeerLandings),
    droppedEdgeLandings: BigInt(record.droppedEdgeLandings),
  };
}
