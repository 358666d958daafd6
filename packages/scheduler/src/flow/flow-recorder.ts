import type { Peer } from "../resource/peer.js";
import type { Task } from "../resource/task.js";
import { ORIGIN, TaskFlow, type FlowLimits } from "./task-flow.js";

export interface FlowRecorderLimits extends FlowLimits {
  /** Tasks whose flow is kept; the least recently fed one is dropped first. */
  readonly tasks: number;
  /** A flow no piece reached for this long is dropped. */
  readonly idleMs: number;
  /**
   * With `tasks` flows kept, a new task's flow replaces the least recently
   * fed one only once that one has had no landing for this long. Without it,
   * more busy tasks than `tasks` push each other out at every report: each
   * flow starts over (useless to an operator) and every report allocates one.
   */
  readonly replaceAfterIdleMs: number;
}

/**
 * The caps, measured by flow-recorder.spec.ts ("stays within its measured
 * bounds", the least of three weighings after GC): a landing is 12 bytes
 * (four typed-array slots), an edge about 60 (six slots and a Map entry), a
 * peer about 55 beyond the ids the registry holds anyway. A flow at every cap
 * holds about 290 KiB, so 128 flows hold about 36 MiB however large the
 * cluster; a 3-peer task of 400 pieces holds about 35 KiB.
 */
export const DEFAULT_FLOW_LIMITS: FlowRecorderLimits = {
  tasks: 128,
  peersPerTask: 1024,
  edgesPerTask: 2048,
  landingsPerTask: 8192,
  idleMs: 60 * 60_000,
  replaceAfterIdleMs: 10_000,
};

/**
 * Keeps a bounded, recent flow record per task from the piece reports the
 * scheduler already receives. One call per verified piece report
 * (`pieceLanded`) from the AnnouncePeer stream; the rest is read by the
 * admin rpcs. Flows outlive their task in the resource registry (an operator
 * looks at a download after it ended) until they are idle for `idleMs` or
 * pushed out by newer ones.
 */
export class FlowRecorder {
  readonly limits: FlowRecorderLimits;
  /** In order of last landing, oldest first (a Map keeps insertion order). */
  readonly #flows = new Map<string, TaskFlow>();
  #lastTaskId = "";
  /** Landings of tasks that got no flow because every kept flow was busy (see replaceAfterIdleMs). */
  landingsWithoutFlow = 0;

  constructor(limits: Partial<FlowRecorderLimits> = {}) {
    this.limits = { ...DEFAULT_FLOW_LIMITS, ...limits };
  }

  get size(): number {
    return this.#flows.size;
  }

  /**
   * A piece report the scheduler accepted: `peer` holds `number` now, from
   * `parentId` ("" for the origin). The parent's host comes from the task,
   * since the parent may have left by the time anyone asks.
   */
  pieceLanded(task: Task, peer: Peer, parentId: string, number: number, bytes: number, at: number): void {
    const flow = this.#flowFor(task.id, at);
    if (flow === undefined) {
      this.landingsWithoutFlow++;
      return;
    }
    const child = flow.peerIndexOf(peer.id, peer.hostId);
    if (child === undefined) return;
    let parent = ORIGIN;
    if (parentId !== "") {
      const index = flow.knownPeer(parentId) ?? flow.peerIndexOf(parentId, task.peers.get(parentId)?.hostId ?? "");
      if (index === undefined) return;
      parent = index;
    }
    flow.land(child, parent, number, bytes, at);
  }

  flowOf(taskId: string): TaskFlow | undefined {
    return this.#flows.get(taskId);
  }

  /** Bytes and pieces `peerId` received per source ("" for the origin), from the task's flow. */
  sourcesOf(taskId: string, peerId: string): Array<{ parentId: string; bytes: number; pieces: number }> {
    const flow = this.#flows.get(taskId);
    const child = flow?.knownPeer(peerId);
    if (flow === undefined || child === undefined) return [];
    return flow.sourcesOf(child).map((s) => ({ parentId: s.parent === ORIGIN ? "" : (flow.peerIds[s.parent] ?? ""), bytes: s.bytes, pieces: s.pieces }));
  }

  /** Drops flows idle for longer than idleMs; the scheduler's GC calls it. */
  forgetIdle(now: number): number {
    let dropped = 0;
    for (const [taskId, flow] of this.#flows) {
      // Oldest first: the first flow still fresh ends the scan.
      if (now - flow.lastAt < this.limits.idleMs) break;
      this.#flows.delete(taskId);
      dropped++;
    }
    if (!this.#flows.has(this.#lastTaskId)) this.#lastTaskId = "";
    return dropped;
  }

  #flowFor(taskId: string, at: number): TaskFlow | undefined {
    const known = this.#flows.get(taskId);
    if (known !== undefined) {
      // Move it to the newest end; skipped for the task of the previous report, the common case in a burst.
      if (this.#lastTaskId !== taskId) {
        this.#flows.delete(taskId);
        this.#flows.set(taskId, known);
        this.#lastTaskId = taskId;
      }
      return known;
    }
    if (this.#flows.size >= this.limits.tasks) {
      const [oldestId, oldest] = this.#flows.entries().next().value ?? [];
      if (oldest !== undefined && at - oldest.lastAt < this.limits.replaceAfterIdleMs) return undefined;
      if (oldestId !== undefined) this.#flows.delete(oldestId);
    }
    const flow = new TaskFlow(taskId, at, this.limits);
    this.#flows.set(taskId, flow);
    this.#lastTaskId = taskId;
    return flow;
  }
}
