import { schedulerv1 } from "@lacewing/api";
import type { HostView, TaskFlowView, TaskPeerView, TaskView } from "../schema/api-schemas.js";

const TASK_STATE: Record<schedulerv1.TaskState, TaskView["state"]> = {
  [schedulerv1.TaskState.UNSPECIFIED]: "pending",
  [schedulerv1.TaskState.PENDING]: "pending",
  [schedulerv1.TaskState.RUNNING]: "running",
  [schedulerv1.TaskState.SUCCEEDED]: "succeeded",
  [schedulerv1.TaskState.FAILED]: "failed",
};

const PEER_STATE: Record<schedulerv1.PeerState, TaskPeerView["state"]> = {
  [schedulerv1.PeerState.UNSPECIFIED]: "pending",
  [schedulerv1.PeerState.PENDING]: "pending",
  [schedulerv1.PeerState.RUNNING]: "running",
  [schedulerv1.PeerState.BACK_TO_SOURCE]: "back_to_source",
  [schedulerv1.PeerState.SUCCEEDED]: "succeeded",
  [schedulerv1.PeerState.FAILED]: "failed",
};

function iso(ms: bigint): string {
  return new Date(Number(ms)).toISOString();
}

/** Hosts by id, to name the hosts behind peers. */
export type HostIndex = ReadonlyMap<string, HostView>;

/** A scheduler's task as the API shows it: peers named by host, with progress and sources. */
export function taskViewOf(status: schedulerv1.TaskStatus, scheduler: string, hosts: HostIndex): TaskView {
  const info = status.info;
  const totalPieces = info?.totalPieces ?? 0;
  const peerHost = new Map(status.peers.map((peer) => [peer.peerId, peer.hostId]));
  return {
    id: info?.taskId ?? "",
    url: status.url,
    tag: status.tag,
    application: status.application,
    digest: info?.digest ?? "",
    contentLength: Number(info?.contentLength ?? -1n),
    pieceLength: Number(info?.pieceLength ?? 0n),
    totalPieces,
    state: TASK_STATE[status.state],
    createdAt: iso(status.createdAtMs),
    scheduler,
    peers: status.peers.map((peer) => {
      const host = hosts.get(peer.hostId);
      const sources = peer.sources.map((source) => ({
        parentId: source.parentId,
        hostname: source.parentId === "" ? "" : (hosts.get(peerHost.get(source.parentId) ?? "")?.hostname ?? ""),
        bytes: Number(source.bytes),
        pieces: source.pieces,
      }));
      const fromOrigin = sources.filter((s) => s.parentId === "").reduce((sum, s) => sum + s.bytes, 0);
      const all = sources.reduce((sum, s) => sum + s.bytes, 0);
      return {
        id: peer.peerId,
        hostId: peer.hostId,
        hostname: host?.hostname ?? "",
        hostType: host?.type ?? "unknown",
        state: PEER_STATE[peer.state],
        finishedPieces: peer.finishedPieces,
        progress: totalPieces > 0 ? Math.min(1, peer.finishedPieces / totalPieces) : 0,
        bytesFromOrigin: fromOrigin,
        bytesFromPeers: all - fromOrigin,
        sources,
        updatedAt: iso(peer.updatedAtMs),
      };
    }),
  };
}

/** Whether a task matches a console search: a substring of its URL, digest or id (case-insensitive). */
export function taskMatches(task: TaskView, q: string): boolean {
  const needle = q.trim().toLowerCase();
  if (needle === "") return true;
  return [task.url, task.digest, task.id].some((text) => text.toLowerCase().includes(needle));
}

/** A scheduler's flow record as the API shows it, peers named by host. */
export function flowViewOf(flow: schedulerv1.GetTaskFlowResponse, scheduler: string, task: TaskView | null, hosts: HostIndex): TaskFlowView {
  const count = flow.landingChild.length;
  const landings: TaskFlowView["landings"] = [];
  for (let i = 0; i < count; i++)
    landings.push({ child: flow.landingChild[i] ?? 0, parent: flow.landingParent[i] ?? -1, piece: flow.landingPiece[i] ?? 0, ms: flow.landingMs[i] ?? 0 });
  return {
    taskId: flow.taskId,
    scheduler,
    startedAt: flow.startedAtMs > 0n ? iso(flow.startedAtMs) : null,
    task,
    peers: flow.peers.map((peer) => {
      const host = hosts.get(peer.hostId);
      return {
        peerId: peer.peerId,
        hostId: peer.hostId,
        hostname: host?.hostname ?? "",
        hostType: host === undefined ? "unknown" : host.type,
        ip: host?.ip ?? "",
        idc: host?.idc ?? "",
        location: host?.location ?? "",
      };
    }),
    edges: flow.edges.map((edge) => ({
      parent: edge.parent,
      child: edge.child,
      bytes: Number(edge.bytes),
      pieces: edge.pieces,
      firstMs: edge.firstMs,
      lastMs: edge.lastMs,
    })),
    landings,
    nextSeq: Number(flow.firstSeq) + count,
    droppedLandings: Number(flow.droppedLandings),
    droppedPeerLandings: Number(flow.droppedPeerLandings),
    droppedEdgeLandings: Number(flow.droppedEdgeLandings),
  };
}
