import { performance } from "node:perf_hooks";
import { DownloadSchema, HostSchema, HostType, create, type Download } from "@lacewing/api";
import { silentLogger } from "@lacewing/common";
import {
  ResourceRegistry,
  chooseParents,
  markBadParents,
  newPeer,
  noteSourceLost,
  forgetBackToSourcePeer,
  notifyTaskChanged,
  recordGeometry,
  addPieceCost,
  recordPieceCost,
  recordPieceDigest,
  schedulePeer,
  type HostRecord,
  type Peer,
  type ScheduleResult,
  type SchedulingDeps,
  type Task,
} from "@lacewing/scheduler";
import type { EventQueue } from "../engine/event-queue.js";
import type { SimOptions } from "./options.js";

/** Scheduler time is epoch ms; the simulation starts at this instant. */
const EPOCH_MS = Date.UTC(2027, 0, 1);

/** What the simulator tells the scheduler about a host at each announcement. */
export interface HostFacts {
  id: string;
  seed: boolean;
  zone: number;
  /** Children syncing pieces from the host now. */
  children: number;
  uploadedBytes: number;
}

/** What a download hears back. */
export type Answer = { kind: "parents"; parents: Peer[]; contentLength: number } | { kind: "back_to_source"; cause: string } | { kind: "empty" };

/** One peer's AnnouncePeer conversation: answers go out in the order the requests came. */
export interface Session {
  readonly peer: Peer;
  readonly download: Download;
  decisions: Promise<void>;
}

export interface SchedulerStats {
  /** Wall-clock ms spent in the real scheduling code (and the microtask turns that run it). */
  wallMs: number;
  decisions: number;
  refreshes: number;
  reschedules: number;
  backToSource: Record<string, number>;
  rejectedReports: number;
  /** markBadParents: calls made, and the wall ms they took. */
  outlierRuns: number;
  outlierMs: number;
  /** Piece reports from a parent the scheduler handed out (each would run markBadParents in the real service). */
  costReports: number;
  /** Simulated ms decisions waited for a parent (register and reschedule answers): longest, and summed. */
  longestWaitMs: number;
  totalWaitMs: number;
}

export interface SchedulerHooks {
  /** The scheduler asks the seed host to download (TriggerDownload); resolves when the seed accepted. */
  trigger(hostId: string): Promise<void>;
  /** The scheduler learned the task's length: every registered download hears it (task_update). */
  lengthLearned(contentLength: number): void;
  /** The scheduler learned a piece's digest: every registered download hears it (task_update). */
  digestLearned(number: number): void;
}

/**
 * The scheduler, as the simulator runs it: the real ResourceRegistry,
 * schedulePeer, chooseParents, noteSourceLost, recordPieceCost /
 * markBadParents and the task's geometry and digest records, driven by the
 * same requests announce-peer.ts turns protocol messages into (this file
 * does for simulated peers what that one does for a gRPC stream: register,
 * report, reschedule, refresh, finish, leave). Validation, metrics, the flow
 * recorder and the protobuf encoding are not run.
 */
export class SimScheduler {
  readonly registry = new ResourceRegistry();
  readonly deps: SchedulingDeps;
  readonly stats: SchedulerStats = {
    wallMs: 0,
    decisions: 0,
    refreshes: 0,
    reschedules: 0,
    backToSource: {},
    rejectedReports: 0,
    outlierRuns: 0,
    outlierMs: 0,
    costReports: 0,
    longestWaitMs: 0,
    totalWaitMs: 0,
  };
  readonly #events: EventQueue;
  readonly #options: SimOptions;
  readonly #hooks: SchedulerHooks;
  readonly #digests: Buffer[] = [];
  readonly #taskId: string;
  #task: Task | undefined;
  #kicked = false;
  #lastOutlierRun = Number.NEGATIVE_INFINITY;
  #outlierDirty = false;
  #wakeQueued = false;
  /** Decisions that may still be waiting for a parent. */
  readonly #waiting = new Set<AbortController>();

  constructor(events: EventQueue, options: SimOptions, hooks: SchedulerHooks, random: () => number) {
    this.#events = events;
    this.#options = options;
    this.#hooks = hooks;
    this.#taskId = "5".repeat(64);
    this.deps = {
      registry: this.registry,
      options: {
        candidateParentLimit: options.scheduler.candidateParentLimit,
        maxReschedules: options.scheduler.maxReschedules,
        // Its own deadline is wall-clock; the simulator enforces scheduleTimeout in simulated time instead (see #decide).
        scheduleTimeoutMs: 24 * 3_600_000,
        topology: options.scheduler.topology,
        crossZoneOnce: options.scheduler.crossZoneOnce,
      },
      logger: silentLogger(),
      now: () => EPOCH_MS + events.now,
      random,
      triggerSeed: (host: HostRecord) => {
        const accepted = hooks.trigger(host.id);
        return accepted.finally(() => this.#kick());
      },
    };
  }

  get task(): Task | undefined {
    return this.#task;
  }

  /** True once since the last call if scheduler code is waiting to run in a microtask. */
  takeKick(): boolean {
    const kicked = this.#kicked;
    this.#kicked = false;
    return kicked;
  }

  /** Times `work`, which runs scheduler code synchronously (a drain of its microtasks included). */
  measure<T>(work: () => T): T {
    const started = performance.now();
    try {
      return work();
    } finally {
      this.stats.wallMs += performance.now() - started;
    }
  }

  announceHost(facts: HostFacts): void {
    const info = create(HostSchema, {
      id: facts.id,
      ip: "10.0.0.1",
      hostname: facts.id,
      port: 65_000,
      downloadPort: 65_001,
      type: facts.seed ? HostType.SEED : HostType.NORMAL,
      idc: `zone-${facts.zone}`,
      location: `region|zone-${facts.zone}`,
      concurrentUploadLimit: this.#options.daemon.uploadLimit,
      concurrentUploadCount: facts.children,
      uploadBytes: BigInt(Math.round(facts.uploadedBytes)),
      uploadRateLimit: 0n,
      announceIntervalSeconds: Math.max(1, Math.ceil(this.#options.daemon.announceIntervalMs / 1000)),
    });
    this.measure(() => {
      this.registry.announceHost(info, this.deps.now(), undefined);
      this.#notify();
    });
  }

  /** A host stops announcing (crashed): dropped at once here, as its peers' streams broke. */
  hostGone(hostId: string): void {
    this.measure(() => {
      const host = this.registry.hosts.get(hostId);
      if (host === undefined) return;
      for (const peerId of [...host.peers.keys()]) {
        const peer = this.#task?.peers.get(peerId);
        if (peer !== undefined && this.#task !== undefined && peer.state !== "succeeded") {
          peer.state = "failed";
          noteSourceLost(this.#task, peer);
        }
      }
      this.registry.deleteHost(hostId);
      this.#kick();
    });
  }

  /** register: the peer joins the task and gets its first answer. */
  register(hostId: string, peerId: string, triggered: boolean, answer: (answer: Answer) => void): Session {
    return this.measure(() => {
      const now = this.deps.now();
      if (this.registry.aliveHost(hostId, now) === undefined) throw new Error(`host ${hostId} registers without having announced`);
      const download = create(DownloadSchema, { url: "http://origin.sim/blob", triggered });
      const task = this.registry.ensureTask(this.#taskId, download, now);
      this.#task = task;
      const peer = newPeer({ id: peerId, taskId: task.id, hostId, triggered, heldPieces: [], now });
      this.registry.addPeer(task, this.registry.hosts.get(hostId)!, peer);
      const session: Session = { peer, download, decisions: Promise.resolve() };
      this.#notify();
      this.#decide(session, answer);
      return session;
    });
  }

  backToSourceStarted(session: Session): void {
    this.measure(() => {
      session.peer.state = "back_to_source";
      this.#notify();
    });
  }

  /** Only a peer that fetches from the origin is believed about the length. */
  taskInfo(session: Session, contentLength: number, pieceLength: number): void {
    this.measure(() => {
      const task = this.#task!;
      if (session.peer.state !== "back_to_source") return;
      const known = task.contentLength >= 0;
      const problem = recordGeometry(task, contentLength, pieceLength);
      if (problem !== undefined) throw new Error(`simulated origin lengths disagree: ${problem}`);
      if (!known) this.#hooks.lengthLearned(contentLength);
      this.#notify();
    });
  }

  /** piece_finished: from the origin (parentId "") or from a parent. */
  pieceFinished(session: Session, number: number, parentId: string, bytes: number, costMs: number): void {
    this.measure(() => {
      const task = this.#task!;
      const { peer } = session;
      if (parentId === "") {
        if (peer.state !== "back_to_source") {
          this.stats.rejectedReports++;
          return;
        }
        if (recordPieceDigest(task, number, this.#digestOf(number), peer.id) === "new") this.#hooks.digestLearned(number);
      } else {
        if (!task.pieceDigests.has(number)) {
          this.stats.rejectedReports++;
          return;
        }
        if (peer.parentsGiven.has(parentId)) this.#recordCost(task, parentId, bytes, costMs);
      }
      peer.pieces.add(number);
      this.#notify();
    });
  }

  /** piece_failed: the child names a parent that failed it; only one it was given counts. */
  pieceFailed(session: Session, parentId: string): void {
    this.measure(() => {
      if (session.peer.parentsGiven.has(parentId)) session.peer.blocklist.add(parentId);
    });
  }

  peerFinished(session: Session): void {
    this.measure(() => {
      const task = this.#task!;
      const { peer } = session;
      peer.state = "succeeded";
      if (task.totalPieces > 0) peer.pieces.fill(task.totalPieces);
      forgetBackToSourcePeer(task, peer.id);
      this.#notify();
    });
  }

  /** reschedule{refresh}: the best other parents now, never a wait, never back to source. */
  refresh(session: Session, known: readonly string[], failed: readonly string[], answer: (answer: Answer) => void): void {
    this.measure(() => {
      this.#blocklist(session, failed);
      this.stats.refreshes++;
      session.decisions = session.decisions.then(() => {
        const task = this.#task!;
        const host = this.registry.hosts.get(session.peer.hostId);
        const parents = host === undefined ? [] : chooseParents(this.deps, task, session.peer, host, new Set(known));
        answer({ kind: "parents", parents, contentLength: task.contentLength });
      });
      this.#kick();
    });
  }

  /** reschedule: the parents cannot make progress; counted, and after too many the answer is back to source. */
  reschedule(session: Session, failed: readonly string[], answer: (answer: Answer) => void): void {
    this.measure(() => {
      this.#blocklist(session, failed);
      session.peer.reschedules++;
      this.stats.reschedules++;
      this.#decide(session, answer);
    });
  }

  /** Ends every decision still waiting (the simulation is over), so no timer outlives it. */
  close(): void {
    for (const controller of this.#waiting) controller.abort();
    this.#waiting.clear();
  }

  /** Runs a pending outlier judgement when the throttle held one back. */
  flushOutliers(): void {
    if (this.#outlierDirty && this.#task !== undefined) this.#runOutliers(this.#task);
  }

  #blocklist(session: Session, failed: readonly string[]): void {
    for (const parentId of failed) if (session.peer.parentsGiven.has(parentId)) session.peer.blocklist.add(parentId);
  }

  #decide(session: Session, answer: (answer: Answer) => void): void {
    this.stats.decisions++;
    session.decisions = session.decisions.then(async () => {
      const task = this.#task!;
      const controller = new AbortController();
      this.#waiting.add(controller);
      // scheduleTimeout in simulated time: the wait ends as the real one would, by going back to source.
      this.#events.after(this.#options.scheduler.scheduleTimeoutMs, () => {
        if (!controller.signal.aborted) {
          controller.abort();
          this.#kick();
        }
      });
      let result: ScheduleResult;
      const asked = this.#events.now;
      try {
        result = await schedulePeer(this.deps, task, session.peer, session.download, controller.signal);
      } catch (err) {
        if (!controller.signal.aborted) throw err;
        result = { kind: "back_to_source", reason: "no parent appeared in time", cause: "timeout" };
      }
      controller.abort();
      this.#waiting.delete(controller);
      const waited = this.#events.now - asked;
      this.stats.longestWaitMs = Math.max(this.stats.longestWaitMs, waited);
      this.stats.totalWaitMs += waited;
      if (result.kind === "back_to_source") this.stats.backToSource[result.cause] = (this.stats.backToSource[result.cause] ?? 0) + 1;
      answer(
        result.kind === "parents"
          ? { kind: "parents", parents: result.parents, contentLength: task.contentLength }
          : result.kind === "back_to_source"
            ? { kind: "back_to_source", cause: result.cause }
            : { kind: "empty" },
      );
    });
    this.#kick();
  }

  #recordCost(task: Task, parentId: string, bytes: number, costMs: number): void {
    this.stats.costReports++;
    if (this.#options.outlierIntervalMs === 0) {
      const started = performance.now();
      recordPieceCost(task, parentId, bytes, costMs);
      this.stats.outlierRuns++;
      this.stats.outlierMs += performance.now() - started;
      return;
    }
    // recordPieceCost, with its markBadParents held to once per interval.
    if (!addPieceCost(task, parentId, bytes, costMs)) return;
    this.#outlierDirty = true;
    if (this.#events.now - this.#lastOutlierRun >= this.#options.outlierIntervalMs) this.#runOutliers(task);
  }

  #runOutliers(task: Task): void {
    const started = performance.now();
    markBadParents(task);
    this.stats.outlierRuns++;
    this.stats.outlierMs += performance.now() - started;
    this.#lastOutlierRun = this.#events.now;
    this.#outlierDirty = false;
  }

  #digestOf(number: number): Buffer {
    let digest = this.#digests[number];
    if (digest === undefined) {
      digest = Buffer.alloc(32);
      digest.writeUInt32BE(number, 0);
      this.#digests[number] = digest;
    }
    return digest;
  }

  /**
   * notifyTaskChanged for the children waiting for a parent. The real
   * service calls it on every report, and each waiter then filters every peer
   * of the task: O(waiters × peers) per report, which at a thousand peers is
   * more CPU than the reports leave time for. Waiters are woken at most every
   * wakeIntervalMs of simulated time instead (0: on every change).
   */
  #notify(): void {
    const task = this.#task;
    if (task === undefined || task.waiters.size === 0) return;
    const interval = this.#options.wakeIntervalMs;
    if (interval === 0) {
      this.#kick();
      notifyTaskChanged(task);
      return;
    }
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    this.#events.after(interval, () => {
      this.#wakeQueued = false;
      this.measure(() => notifyTaskChanged(task));
      this.#kick();
    });
  }

  #kick(): void {
    this.#kicked = true;
  }
}
