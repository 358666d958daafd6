import { rendezvousOrder } from "@lacewing/common";
import { isHostAlive, isSeedHost, type HostRecord } from "../resource/host.js";
import type { Task } from "../resource/task.js";

/** How long an ordered replica counts as on its way; after that the order is given up and another host is asked. */
export const PLACEMENT_TIMEOUT_MS = 5 * 60_000;

/** Where a persistent task's copies stand, as the scheduler sees them. */
export interface ReplicaView {
  /** Alive hosts that hold a complete copy. */
  holders: HostRecord[];
  /** Alive hosts ordered to download a copy, not finished yet, order not timed out. */
  placing: HostRecord[];
}

/** The task's holders and placements on alive hosts. A tainted host's copy does not count. */
export function replicaViewOf(task: Task, hosts: ReadonlyMap<string, HostRecord>, now: number): ReplicaView {
  const holderIds = new Set<string>();
  for (const peer of task.peers.values()) {
    if (peer.state !== "succeeded" || task.taintedHosts.has(peer.hostId)) continue;
    const host = hosts.get(peer.hostId);
    if (host !== undefined && isHostAlive(host, now)) holderIds.add(host.id);
  }
  const placing: HostRecord[] = [];
  for (const [hostId, at] of task.persistent?.placements ?? []) {
    if (holderIds.has(hostId) || now - at >= PLACEMENT_TIMEOUT_MS) continue;
    const host = hosts.get(hostId);
    if (host !== undefined && isHostAlive(host, now)) placing.push(host);
  }
  return { holders: [...holderIds].map((id) => hosts.get(id)!), placing };
}

/**
 * The hosts to order a new copy from, so the task reaches its replica
 * count: seed peers first, then ordinary peers when there are not enough
 * seeds, each group in rendezvous order of the task id (the same choice on
 * every run, spread over the cluster across tasks). Nothing is placed while
 * no alive host holds a copy: there is no origin to fetch one from. Pure.
 */
export function planReplicas(task: Task, hosts: ReadonlyMap<string, HostRecord>, now: number): HostRecord[] {
  const persistent = task.persistent;
  if (persistent === undefined || now >= persistent.expiresAt) return [];
  const { holders, placing } = replicaViewOf(task, hosts, now);
  if (holders.length === 0) return [];
  const missing = persistent.replicas - holders.length - placing.length;
  if (missing <= 0) return [];
  const taken = new Set([...holders, ...placing].map((host) => host.id));
  const free = [...hosts.values()].filter((host) => !taken.has(host.id) && !task.taintedHosts.has(host.id) && isHostAlive(host, now));
  const ordered = (group: HostRecord[]): HostRecord[] => {
    const byId = new Map(group.map((host) => [host.id, host]));
    return rendezvousOrder(task.id, [...byId.keys()]).map((id) => byId.get(id)!);
  };
  return [...ordered(free.filter(isSeedHost)), ...ordered(free.filter((host) => !isSeedHost(host)))].slice(0, missing);
}
