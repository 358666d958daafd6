import { errorMessage, type Logger } from "@lacewing/common";
import type { HostRecord } from "../resource/host.js";
import type { ResourceRegistry } from "../resource/resource-registry.js";
import type { PersistentTaskState, Task } from "../resource/task.js";
import { planReplicas, replicaViewOf } from "./replicas.js";

export interface PersistentKeeperDeps {
  readonly registry: ResourceRegistry;
  readonly logger: Logger;
  readonly now: () => number;
  /** Orders `host` to download a copy of the persistent task from peers (DfdaemonPeer.TriggerDownload); rejects if it refuses. */
  readonly placeReplica: (host: HostRecord, task: Task, persistent: PersistentTaskState) => Promise<void>;
  /** Orders `host` to delete its copy (DfdaemonPeer.DeletePersistentTask). */
  readonly orderDelete: (host: HostRecord, taskId: string) => Promise<void>;
}

/** Why a persistent task leaves the cluster. */
export type RemovalReason = "deleted" | "expired";

/**
 * Keeps every persistent cache task at its replica count until it expires:
 * `reconcile()` (periodic, and after anything that may have cost a copy)
 * orders new copies from the hosts `planReplicas` picks, and removes expired
 * tasks everywhere. `remove()` is dfcache delete. A removed task's expiry is
 * remembered until it passes, so a holder that was away when the order went
 * out cannot bring the same copy back (a fresh import has a new expiry and
 * is welcome).
 */
export class PersistentKeeper {
  readonly #deps: PersistentKeeperDeps;
  /** Ids of the persistent tasks the registry holds, so a pass does not walk every task. */
  readonly #tasks = new Set<string>();
  /** Removed tasks: id → the expiries of the copies removed. */
  readonly #removed = new Map<string, Set<number>>();

  constructor(deps: PersistentKeeperDeps) {
    this.#deps = deps;
  }

  /** The task became (or is) persistent. */
  track(task: Task): void {
    this.#tasks.add(task.id);
  }

  /** Whether a copy with this expiry belongs to a task removed cluster-wide. */
  wasRemoved(taskId: string, expiresAt: number): boolean {
    return this.#removed.get(taskId)?.has(expiresAt) === true;
  }

  #kicked = false;

  /** A reconcile soon (next turn of the event loop), however many events ask for one meanwhile. */
  kick(): void {
    if (this.#kicked || this.#tasks.size === 0) return;
    this.#kicked = true;
    setImmediate(() => {
      this.#kicked = false;
      this.reconcile();
    });
  }

  /** One pass: expired tasks go, the others get the copies they lack. */
  reconcile(): void {
    const { registry, now } = this.#deps;
    const at = now();
    for (const [taskId, expiries] of this.#removed) {
      for (const expiresAt of expiries) if (expiresAt <= at) expiries.delete(expiresAt);
      if (expiries.size === 0) this.#removed.delete(taskId);
    }
    for (const taskId of [...this.#tasks]) {
      const task = registry.tasks.get(taskId);
      if (task?.persistent === undefined) {
        this.#tasks.delete(taskId);
        continue;
      }
      if (at >= task.persistent.expiresAt) {
        this.remove(task, "expired");
        continue;
      }
      forgetSettledPlacements(task, task.persistent, at);
      for (const host of planReplicas(task, registry.hosts, at)) this.#place(task, task.persistent, host, at);
    }
  }

  /** Copies wanted and held, for StatTask. */
  status(task: Task): { held: string[] } {
    return { held: replicaViewOf(task, this.#deps.registry.hosts, this.#deps.now()).holders.map((host) => host.id) };
  }

  /**
   * Removes the task everywhere: every host with a peer of it is ordered to
   * delete its copy (each reports back with DeleteTask, as after any
   * eviction), and the scheduler forgets it at once. Returns the hosts ordered.
   */
  remove(task: Task, reason: RemovalReason): number {
    const { registry, logger } = this.#deps;
    const persistent = task.persistent;
    if (persistent !== undefined) {
      const expiries = this.#removed.get(task.id) ?? new Set<number>();
      expiries.add(persistent.expiresAt);
      this.#removed.set(task.id, expiries);
    }
    const hostIds = new Set([...task.peers.values()].map((peer) => peer.hostId));
    for (const hostId of persistent?.placements.keys() ?? []) hostIds.add(hostId);
    for (const hostId of hostIds) {
      const host = registry.hosts.get(hostId);
      if (host === undefined) continue;
      this.#deps.orderDelete(host, task.id).catch((err: unknown) => {
        logger.warn({ taskId: task.id, hostId, err: errorMessage(err) }, "cannot order a holder to delete a persistent task");
      });
    }
    task.persistent = undefined;
    this.#tasks.delete(task.id);
    for (const peer of [...task.peers.values()]) registry.removePeer(task, peer.id);
    registry.tasks.delete(task.id);
    logger.info({ taskId: task.id, reason, holders: hostIds.size }, "persistent task removed");
    return hostIds.size;
  }

  #place(task: Task, persistent: PersistentTaskState, host: HostRecord, at: number): void {
    const { logger } = this.#deps;
    persistent.placements.set(host.id, at);
    logger.info({ taskId: task.id, hostId: host.id, replicas: persistent.replicas }, "placing a replica of a persistent task");
    this.#deps.placeReplica(host, task, persistent).catch((err: unknown) => {
      if (persistent.placements.get(host.id) === at) persistent.placements.delete(host.id);
      logger.warn({ taskId: task.id, hostId: host.id, err: errorMessage(err) }, "replica placement refused");
    });
  }
}

/** How long an ordered host has to register its download before the order counts as lost. */
const PLACEMENT_START_MS = 15_000;

/**
 * A placement is settled once its host holds the copy (it counts as a
 * holder from then on, so losing the copy later is seen at once), or when
 * the host has no live download of the task some time after the order (the
 * download failed or never started): then another host may be asked.
 */
function forgetSettledPlacements(task: Task, persistent: PersistentTaskState, now: number): void {
  for (const [hostId, at] of persistent.placements) {
    let holds = false;
    let downloading = false;
    for (const peer of task.peers.values()) {
      if (peer.hostId !== hostId) continue;
      if (peer.state === "succeeded") holds = true;
      else if (peer.state !== "failed") downloading = true;
    }
    if (holds || (!downloading && now - at >= PLACEMENT_START_MS)) persistent.placements.delete(hostId);
  }
}
