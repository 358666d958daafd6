import { freeUploadSlots, isHostAlive, isSeedHost, type HostRecord } from "../resource/host.js";
import type { Peer } from "../resource/peer.js";
import { piecesToGive } from "../resource/piece-set.js";
import type { Task } from "../resource/task.js";

export type Topology = "isolation" | "affinity";

export interface FilterContext {
  readonly task: Task;
  readonly child: Peer;
  readonly childHost: HostRecord;
  readonly hosts: ReadonlyMap<string, HostRecord>;
  readonly topology: Topology;
  /** Milliseconds since the epoch; liveness is judged now, not at the last GC. */
  readonly now: number;
  /**
   * Parents come from inside the child's idc: it is its own source zone
   * (isolation, or a seed peer of its own under affinity), or under affinity
   * an earlier peer of the zone fetches from the others for it.
   */
  readonly ownZone: boolean;
}

/** Why a peer cannot be a parent of the child, or undefined if it can. */
export function parentRejection(ctx: FilterContext, parent: Peer): string | undefined {
  const { task, child, childHost } = ctx;
  if (parent.id === child.id) return "self";
  if (parent.hostId === child.hostId) return "same host";
  if (parent.state === "failed") return "failed";
  if (child.blocklist.has(parent.id)) return "blocklisted";
  if (task.excludedParents.has(parent.id)) return "served a piece that failed its digest";
  if (task.taintedHosts.has(parent.hostId)) return "holds a copy that failed the task's digest";
  const host = ctx.hosts.get(parent.hostId);
  if (host === undefined || !isHostAlive(host, ctx.now)) return "host not alive";
  if (freeUploadSlots(host, ctx.now) <= 0) return "no free upload slots";
  if (ctx.topology === "isolation" && host.info.idc !== childHost.info.idc) return "other idc";
  if (ctx.ownZone && host.info.idc !== childHost.info.idc) return "other idc, and the child's is served from inside";
  if (!hasSomethingToGive(parent, child, host)) return "nothing to give";
  return undefined;
}

/**
 * A parent is useful if it holds a piece the child lacks, is finished, or is
 * fetching right now (back to source, or a seed download): the child syncs
 * its pieces as they land, which is what makes a chain of peers pipeline.
 */
function hasSomethingToGive(parent: Peer, child: Peer, host: HostRecord): boolean {
  if (parent.state === "succeeded" || parent.state === "back_to_source") return true;
  if (parent.state === "running" && (parent.triggered || isSeedHost(host))) return true;
  return piecesToGive(parent.pieces, child.pieces) > 0;
}

/** The task's peers that may serve the child, unranked. */
export function filterCandidateParents(ctx: FilterContext): Peer[] {
  return [...ctx.task.peers.values()].filter((parent) => parentRejection(ctx, parent) === undefined);
}
