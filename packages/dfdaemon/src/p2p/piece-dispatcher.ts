import type { Agent } from "undici";
import type { schedulerv1, TaskInfo } from "@lacewing/api";
import { MAX_PIECE_COUNT, deferred, errorMessage, pieceRangeOf, type Deferred, type Logger } from "@lacewing/common";
import type { PieceEvent } from "../download/task-filler.js";
import type { DfdaemonMetrics, PieceFailureReason } from "../metrics.js";
import type { StoredTask } from "../storage/stored-task.js";
import { ParentPeer, type PeerClients } from "./parent-peer.js";
import { fetchPiece, PieceFetchError } from "./piece-fetch.js";
import type { TrustedTask } from "./trusted-task.js";

export interface DispatcherOptions {
  task: StoredTask;
  /** The scheduler's digests: a piece is asked for only once its digest is known, and kept only if it matches. */
  trusted: TrustedTask;
  peerId: string;
  hostId: string;
  agent: Agent;
  clients: PeerClients;
  /** Pieces in flight at once, over all parents. */
  concurrency: number;
  /** Pieces in flight at once from one parent. */
  perParentLimit: number;
  pieceTimeoutMs: number;
  /** With nothing in flight and nothing new announced for this long, the parents are declared stuck. */
  idleTimeoutMs: number;
  signal: AbortSignal;
  log: Logger;
  metrics: DfdaemonMetrics;
  onPiece: (event: PieceEvent) => void;
  onPieceFailed: (parentId: string, number: number, reason: PieceFailureReason, description: string) => void;
}

export type Progress = "complete" | "stuck";

/** How long a parent that answered 503 is left alone. */
const BUSY_BACKOFF_MS = 300;
/** How long a piece a seed sent elsewhere is not asked of it again. */
const ELSEWHERE_BACKOFF_MS = 1_000;

/**
 * Fetches a task's pieces from its parents: several parents at once, with
 * bounded concurrency, the idlest and fastest parent first, and of its
 * pieces the rarest (see #pick). A parent that fails a piece (connect error,
 * timeout, bytes that do not match the scheduler's SHA-256, a missing piece)
 * or says something no honest parent would (a piece past the end, another
 * length) is dropped for this task and reported; the piece is asked of
 * another parent. Nothing a parent says can do more than cost the child that
 * parent. When no remaining parent can make progress the
 * dispatcher reports "stuck" and the caller asks the scheduler for more.
 */
export class PieceDispatcher {
  readonly #o: DispatcherOptions;
  readonly #parents = new Map<string, ParentPeer>();
  readonly #inflight = new Set<number>();
  #failedParents: string[] = [];
  #waiter: Deferred<Progress> | undefined;
  #fatal: unknown;
  #lastActivity = Date.now();
  #idleTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  /** Parents given up on since the last call, for the next reschedule request. */
  takeFailedParents(): string[] {
    const failed = this.#failedParents;
    this.#failedParents = [];
    return failed;
  }

  /** Ids of the parents still usable. */
  liveParentIds(): string[] {
    return [...this.#parents.values()].filter((parent) => !parent.dropped).map((parent) => parent.id);
  }

  /** Adds the scheduler's candidates (known ones are skipped) and starts syncing with them. */
  addParents(candidates: schedulerv1.CandidateParent[]): void {
    const { task, peerId, hostId } = this.#o;
    for (const candidate of candidates) {
      if (candidate.peerId === "" || this.#parents.has(candidate.peerId) || candidate.host === undefined) continue;
      if (candidate.host.id === hostId) continue;
      const parent = new ParentPeer(candidate);
      this.#parents.set(parent.id, parent);
      parent.sync(
        this.#o.clients.get(parent.endpoint),
        { taskId: task.taskId, peerId, hostId, heldPieces: task.pieces().map((p) => p.number) },
        {
          info: (from, info) => this.#onInfo(from, info),
          piece: (from, number, sha256) => this.#onPieceAnnounced(from, number, sha256),
          end: (from, err) => this.#onSyncEnd(from, err),
        },
      );
    }
    this.#activity();
  }

  /** Resolves when every piece is stored, or when the parents cannot make progress; rejects on a local failure (disk). */
  waitForProgress(): Promise<Progress> {
    if (this.#fatal !== undefined) return Promise.reject(this.#fatal);
    this.#waiter ??= deferred<Progress>();
    const waiter = this.#waiter;
    this.#pump();
    return waiter.promise;
  }

  /** Closes every parent stream; pieces in flight are abandoned. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#retryTimer);
    for (const parent of this.#parents.values()) parent.drop();
  }

  #activity(): void {
    this.#lastActivity = Date.now();
    this.#pump();
  }

  /** The scheduler told something new (the length, digests): pieces may have become fetchable. */
  trustedChanged(): void {
    if (this.#o.task.lengthKnown) for (const parent of this.#parents.values()) this.#checkAnnounced(parent);
    this.#activity();
  }

  /**
   * A parent's idea of the length is never used: it is only compared, once
   * the task's own length (from the scheduler) is known.
   */
  #onInfo(parent: ParentPeer, info: TaskInfo): void {
    const { task } = this.#o;
    const contentLength = Number(info.contentLength);
    const pieceLength = Number(info.pieceLength);
    if (contentLength < 0 || !task.lengthKnown) return;
    if (task.meta.contentLength !== contentLength || task.meta.pieceLength !== pieceLength)
      this.#fail(
        parent,
        -1,
        "other",
        `parent says the task has ${contentLength} bytes in ${pieceLength}-byte pieces; the scheduler says ${task.meta.contentLength} in ${task.meta.pieceLength}`,
      );
    this.#activity();
  }

  #onPieceAnnounced(parent: ParentPeer, number: number, sha256: string | undefined): void {
    const { task, trusted } = this.#o;
    const limit = task.lengthKnown ? task.totalPieces : MAX_PIECE_COUNT;
    if (!Number.isInteger(number) || number < 0 || number >= limit) {
      this.#fail(parent, -1, "other", `parent announced piece ${number} of a task with ${limit} pieces`);
      return;
    }
    // Only the digest source's own digests count, and only over a connection that proved its identity.
    const source = trusted.source;
    if (sha256 !== undefined && source?.candidate.peerId === parent.id && this.#o.clients.subjectOf(parent.endpoint) === source.subject) {
      if (trusted.learnFromSource(number, sha256) === "conflict") {
        this.#fail(parent, number, "corrupt", `the digest source's digest of piece ${number} contradicts the scheduler's`);
        return;
      }
    }
    parent.pieces.add(number);
    this.#activity();
  }

  /** Drops a parent that announced pieces past the end of a task whose length became known after. */
  #checkAnnounced(parent: ParentPeer): void {
    const total = this.#o.task.totalPieces;
    for (const number of parent.pieces) {
      if (number < total) continue;
      this.#fail(parent, -1, "other", `parent announced piece ${number} of a task with ${total} pieces`);
      return;
    }
  }

  #onSyncEnd(parent: ParentPeer, err: unknown): void {
    if (err !== undefined && !parent.dropped) this.#fail(parent, -1, "connect", errorMessage(err));
    this.#pump();
  }

  /** Drops a parent for this task and reports why. */
  #fail(parent: ParentPeer, number: number, reason: PieceFailureReason, description: string): void {
    if (parent.dropped) return;
    parent.drop();
    this.#failedParents.push(parent.id);
    this.#o.metrics.pieceFailures.inc({ reason });
    this.#o.log.warn({ taskId: this.#o.task.taskId, parentId: parent.id, piece: number, reason, err: description }, "dropping parent");
    this.#o.onPieceFailed(parent.id, number, reason, description);
  }

  /** A local failure (the disk) ends the download: no parent can help. */
  fail(err: unknown): void {
    this.#abortWith(err);
  }

  #abortWith(err: unknown): void {
    this.#fatal ??= err;
    this.stop();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(err);
  }

  #settle(progress: Progress): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    clearTimeout(this.#idleTimer);
    waiter?.resolve(progress);
  }

  #pump(): void {
    // A bug here must fail this download, not the daemon: pump runs from timers and settled promises.
    try {
      this.#pumpOnce();
    } catch (err) {
      this.#abortWith(err);
    }
  }

  #pumpOnce(): void {
    if (this.#stopped) return;
    const { task } = this.#o;
    if (task.lengthKnown && task.pieceCount === task.totalPieces) {
      this.#settle("complete");
      return;
    }
    if (task.lengthKnown) {
      while (this.#inflight.size < this.#o.concurrency) {
        const pick = this.#pick();
        if (pick === undefined) break;
        this.#start(pick.piece, pick.parent);
      }
    }
    if (this.#inflight.size > 0 || this.#waiter === undefined) return;
    if (this.liveParentIds().length === 0) {
      this.#settle("stuck");
      return;
    }
    // Live parents that hold nothing we need yet: they are still downloading. Wait, but not forever.
    const idle = Date.now() - this.#lastActivity;
    clearTimeout(this.#idleTimer);
    if (idle >= this.#o.idleTimeoutMs) {
      this.#o.log.warn({ taskId: task.taskId, idleMs: idle }, "parents made no progress");
      this.#settle("stuck");
      return;
    }
    this.#idleTimer = setTimeout(() => this.#pump(), this.#o.idleTimeoutMs - idle + 10);
    this.#idleTimer.unref();
  }

  /**
   * The next request: the idlest usable parent (fewest pieces in flight,
   * then fastest) that holds a missing piece, and of its pieces the rarest
   * among this child's parents — a random one of the lowest-numbered few
   * equally rare, so children of one parent fetch different pieces and can
   * trade them, while the file still fills roughly in order.
   */
  #pick(): { piece: number; parent: ParentPeer } | undefined {
    const { perParentLimit } = this.#o;
    const now = Date.now();
    const ready: ParentPeer[] = [];
    let busyWait = Number.POSITIVE_INFINITY;
    for (const parent of this.#parents.values()) {
      if (parent.dropped || parent.token === undefined || parent.inflight >= perParentLimit) continue;
      if (parent.busyUntil > now) busyWait = Math.min(busyWait, parent.busyUntil - now);
      else ready.push(parent);
    }
    ready.sort((a, b) => a.inflight - b.inflight || b.speed - a.speed || Math.random() - 0.5);
    for (const parent of ready) {
      const piece = this.#rarestOf(parent, now);
      if (piece !== undefined) return { piece, parent };
      for (const until of parent.elsewhere.values()) if (until > now) busyWait = Math.min(busyWait, until - now);
    }
    if (busyWait !== Number.POSITIVE_INFINITY) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#pump(), busyWait + 5);
      this.#retryTimer.unref();
    }
    return undefined;
  }

  /**
   * The rarest missing piece `parent` holds whose digest the scheduler gave
   * (random among the lowest-numbered equally rare), if any.
   */
  #rarestOf(parent: ParentPeer, now: number): number | undefined {
    const { task, trusted } = this.#o;
    const window = Math.max(4, this.#o.concurrency);
    const total = task.totalPieces;
    let rarest = Number.POSITIVE_INFINITY;
    let choices: number[] = [];
    for (const number of parent.pieces) {
      if (number >= total || task.hasPiece(number) || this.#inflight.has(number) || trusted.digest(number) === undefined) continue;
      if ((parent.elsewhere.get(number) ?? 0) > now) continue;
      let holders = 0;
      for (const other of this.#parents.values()) if (!other.dropped && other.pieces.has(number)) holders++;
      if (holders < rarest) {
        rarest = holders;
        choices = [number];
      } else if (holders === rarest) {
        choices.push(number);
      }
    }
    if (choices.length > window) choices = choices.sort((a, b) => a - b).slice(0, window);
    return choices[Math.floor(Math.random() * choices.length)];
  }

  #start(number: number, parent: ParentPeer): void {
    const { task, trusted } = this.#o;
    // #rarestOf only picks pieces below the count with a digest, so neither lookup can fail.
    const range = pieceRangeOf(number, task.meta.pieceLength, task.meta.contentLength);
    const sha256 = trusted.digest(number)!;
    this.#inflight.add(number);
    parent.inflight++;
    const started = Date.now();
    fetchPiece(this.#o.agent, {
      baseUrl: parent.baseUrl,
      taskId: task.taskId,
      number,
      length: range.length,
      sha256,
      token: parent.token ?? "",
      timeoutMs: this.#o.pieceTimeoutMs,
      signal: this.#o.signal,
    })
      .then(async (bytes) => {
        const costMs = Date.now() - started;
        const piece = { ...range, sha256 };
        await task.writePiece(piece, bytes);
        parent.bytes += range.length;
        parent.costMs += Math.max(costMs, 1);
        this.#o.metrics.pieceDuration.observe({ source: "peer" }, costMs / 1000);
        this.#o.onPiece({ piece, source: "peer", parentId: parent.id, costMs });
        this.#lastActivity = Date.now();
      })
      .catch((err: unknown) => {
        if (this.#stopped) return;
        if (!(err instanceof PieceFetchError)) {
          this.#abortWith(err); // A local failure such as a full disk: no parent can help.
          return;
        }
        if (err.reason === "elsewhere") {
          // A super-seeding seed sent this piece to another child: get it there, or here after a while.
          parent.elsewhere.set(number, Date.now() + ELSEWHERE_BACKOFF_MS);
          return;
        }
        if (err.reason === "busy") {
          parent.busyUntil = Date.now() + BUSY_BACKOFF_MS;
          this.#o.metrics.pieceFailures.inc({ reason: "busy" });
          return;
        }
        this.#fail(parent, number, err.reason, err.message);
      })
      .finally(() => {
        this.#inflight.delete(number);
        parent.inflight--;
        this.#pump();
      });
  }
}
