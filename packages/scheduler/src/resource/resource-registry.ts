import type { Download, Host } from "@lacewing/api";
import { isHostAlive, isSeedHost, newHostRecord, refreshHost, type HostOwner, type HostRecord } from "./host.js";
import type { Peer } from "./peer.js";
import { forgetBackToSourcePeer, newTask, notifyTaskChanged, updateTaskDownload, waitForTaskChange, type Task } from "./task.js";

/**
 * Every host, task and peer the scheduler knows, in memory. After a restart
 * it is rebuilt from announcements: hosts re-announce, daemons re-register
 * their downloads with the pieces they hold.
 */
export class ResourceRegistry {
  readonly hosts = new Map<string, HostRecord>();
  readonly tasks = new Map<string, Task>();
  // Indexes kept beside the maps, so no request walks every host or task.
  /** Hosts per owner (subject and address), for maxHostsPerOwner. */
  readonly #owned = new Map<string, number>();
  readonly #seeds = new Map<string, HostRecord>();
  /** Tasks with peers waiting for a parent: a host announcement wakes these, not every task. */
  readonly #waiting = new Set<Task>();

  /** Adds or refreshes a host; the caller has checked that `owner` may announce it. */
  announceHost(info: Host, now: number, owner: HostOwner | undefined): HostRecord {
    let host = this.hosts.get(info.id);
    if (host === undefined) {
      host = newHostRecord(info, now, owner);
      this.hosts.set(info.id, host);
      if (owner !== undefined) this.#owned.set(ownerKey(owner), this.hostsOwnedBy(owner) + 1);
    } else refreshHost(host, info, now);
    if (isSeedHost(host)) this.#seeds.set(host.id, host);
    else this.#seeds.delete(host.id);
    return host;
  }

  /** How many hosts `owner` announced (and that are still known). */
  hostsOwnedBy(owner: HostOwner): number {
    return this.#owned.get(ownerKey(owner)) ?? 0;
  }

  /** Seed hosts that announced recently enough to be trusted. */
  aliveSeedHosts(now: number): HostRecord[] {
    return [...this.#seeds.values()].filter((host) => isHostAlive(host, now));
  }

  /** waitForTaskChange, with the task listed as waiting meanwhile (see wakeWaiting). */
  async waitForChange(task: Task, ms: number, signal: AbortSignal): Promise<"changed" | "timeout" | "aborted"> {
    this.#waiting.add(task);
    try {
      return await waitForTaskChange(task, ms, signal);
    } finally {
      if (task.waiters.size === 0) this.#waiting.delete(task);
    }
  }

  /** Wakes every peer waiting for a parent, on any task (a host appeared or refreshed its load). */
  wakeWaiting(): void {
    for (const task of [...this.#waiting]) notifyTaskChanged(task);
  }

  /** The host if it announced recently enough to be trusted. */
  aliveHost(hostId: string, now: number): HostRecord | undefined {
    const host = this.hosts.get(hostId);
    return host !== undefined && isHostAlive(host, now) ? host : undefined;
  }

  /** Removes the host and all its peers; returns whether it was known. */
  deleteHost(hostId: string): boolean {
    const host = this.hosts.get(hostId);
    if (host === undefined) return false;
    for (const [peerId, taskId] of [...host.peers]) {
      const task = this.tasks.get(taskId);
      if (task !== undefined) this.removePeer(task, peerId);
    }
    this.hosts.delete(hostId);
    this.#seeds.delete(hostId);
    if (host.owner !== undefined) {
      const key = ownerKey(host.owner);
      const owned = (this.#owned.get(key) ?? 1) - 1;
      if (owned > 0) this.#owned.set(key, owned);
      else this.#owned.delete(key);
    }
    return true;
  }

  /** Drops hosts silent for twice their announce interval; returns them. */
  expireHosts(now: number): HostRecord[] {
    const expired = [...this.hosts.values()].filter((host) => !isHostAlive(host, now));
    for (const host of expired) this.deleteHost(host.id);
    return expired;
  }

  ensureTask(taskId: string, download: Download, now: number): Task {
    const known = this.tasks.get(taskId);
    if (known !== undefined) {
      updateTaskDownload(known, download);
      return known;
    }
    const task = newTask(taskId, download, now);
    this.tasks.set(taskId, task);
    return task;
  }

  /** Adds (or replaces) a peer of a task on its host. */
  addPeer(task: Task, host: HostRecord, peer: Peer): void {
    task.peers.set(peer.id, peer);
    host.peers.set(peer.id, task.id);
  }

  /**
   * Removes a peer at once: it stops being handed out, and a task left
   * without peers is forgotten. Peers waiting on the task re-run scheduling.
   */
  removePeer(task: Task, peerId: string): Peer | undefined {
    const peer = task.peers.get(peerId);
    if (peer === undefined) return undefined;
    task.peers.delete(peerId);
    this.hosts.get(peer.hostId)?.peers.delete(peerId);
    forgetBackToSourcePeer(task, peerId);
    this.dropIfUnused(task);
    notifyTaskChanged(task);
    return peer;
  }

  /**
   * Forgets a task nobody holds or waits for. A tainted task is kept (until
   * forgetStaleTasks) so the hosts whose copies failed its digest cannot
   * re-announce them to a fresh task.
   */
  dropIfUnused(task: Task): void {
    if (task.peers.size === 0 && task.waiters.size === 0 && task.taintedHosts.size === 0) this.tasks.delete(task.id);
  }

  /** Drops tasks without peers or waiters that are older than `maxAgeMs` (tainted ones included). */
  forgetStaleTasks(now: number, maxAgeMs: number): number {
    let dropped = 0;
    for (const task of [...this.tasks.values()]) {
      if (task.peers.size > 0 || task.waiters.size > 0 || now - task.createdAt < maxAgeMs) continue;
      this.tasks.delete(task.id);
      dropped++;
    }
    return dropped;
  }

  /** A node evicted a task: drop that host's peers of it. */
  deleteTaskOnHost(hostId: string, taskId: string): number {
    const task = this.tasks.get(taskId);
    if (task === undefined) return 0;
    const onHost = [...task.peers.values()].filter((peer) => peer.hostId === hostId);
    for (const peer of onHost) this.removePeer(task, peer.id);
    return onHost.length;
  }
}

function ownerKey(owner: HostOwner): string {
  return `${owner.subject}\0${owner.ip}`;
}
