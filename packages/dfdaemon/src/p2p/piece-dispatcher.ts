import type { schedulerv1, TaskInfo } from "@lacewing/api";
import { MAX_PIECE_COUNT, deferred, errorMessage, pieceRangeOf, type Deferred, type Logger } from "@lacewing/common";
import type { PieceEvent } from "../download/task-filler.js";
import type { DfdaemonMetrics, PieceFailureReason } from "../metrics.js";
import type { StoredTask } from "../storage/stored-task.js";
import { ParentPeer, type AnnouncedPiece, type ParentChannels } from "./parent-peer.js";
import { PieceFetchError } from "./piece-client.js";
import { pickNextPiece, type InflightRequest } from "./piece-choice.js";
import type { TrustedTask } from "./trusted-task.js";

export interface DispatcherOptions {
  task: StoredTask;
  /** The scheduler's digests: a piece is asked for only once its digest is known, and kept only if it matches. */
  trusted: TrustedTask;
  peerId: string;
  hostId: string;
  channels: ParentChannels;
  /** Requests in flight at once, over all parents. */
  concurrency: number;
  /** Requests in flight at once to one parent (pipelined on its connection). */
  perParentLimit: number;
  /** A parent that sends nothing for this long while a piece is asked of it fails the piece as a timeout. */
  stallTimeoutMs: number;
  /** With nothing in flight and nothing new announced for this long, the parents are declared stuck. */
  idleTimeoutMs: number;
  signal: AbortSignal;
  log: Logger;
  metrics: DfdaemonMetrics;
  /** A verified piece is stored. */
  onPiece: (event: PieceEvent) => void;
  onPieceFailed: (parentId: string, number: number, reason: PieceFailureReason, description: string) => void;
  /** For tests: the clock and the tie-breaker of the piece choice. */
  now?: () => number;
  random?: () => number;
}

/** Where the dispatcher stopped: every piece stored, or no parent can make progress. */
export type DispatchOutcome = "complete" | "stuck";

/** How long a parent that said it is busy is left alone when it did not say. */
export const BUSY_BACKOFF_MS = 300;
/** How long a piece a seed sent elsewhere is not asked of it again. */
export const ELSEWHERE_BACKOFF_MS = 1_000;
/** Wanted pieces of one parent weighed for rarity per choice: enough to spread children, bounded whatever the piece count. */
export const CHOICE_SCAN = 64;

interface Request extends InflightRequest {
  parent: ParentPeer;
  controller: AbortController;
}

/**
 * Fetches a task's pieces from its parents: several parents at once, a few
 * requests pipelined to each, chosen by pickNextPiece (rarest first, then
 * endgame). A parent that fails a piece (connect error, timeout, bytes that
 * do not match the scheduler's SHA-256, a missing piece) or says something
 * no honest parent would (a piece past the end, another length) is dropped
 * for this task and reported; the piece is asked of another parent. Nothing
 * a parent says can do more than cost the child that parent. When no
 * remaining parent can make progress the dispatcher reports "stuck" and the
 * caller asks the scheduler for more.
 */
export class PieceDispatcher {
  readonly #o: DispatcherOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #parents = new Map<string, ParentPeer>();
  /** Missing pieces whose digest is known: what may be asked for. */
  readonly #wanted = new Set<number>();
  /** Parents (not dropped) that announced each piece. */
  readonly #holders = new Map<number, number>();
  readonly #inflight = new Map<number, Request[]>();
  /** Every piece was looked at once the length became known; after that only newly learned digests are. */
  #scanned = false;
  #requests = 0;
  #failedParents: string[] = [];
  #waiter: Deferred<DispatchOutcome> | undefined;
  #fatal: unknown;
  #lastActivity: number;
  #idleTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#lastActivity = this.#now();
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
        this.#o.channels,
        { taskId: task.taskId, peerId, hostId, heldPieces: task.pieces().map((p) => p.number) },
        {
          info: (from, info) => this.#onInfo(from, info),
          pieces: (from, pieces) => this.#onPiecesAnnounced(from, pieces),
          end: (from, err) => this.#onSyncEnd(from, err),
        },
      );
    }
    this.#activity();
  }

  /** Resolves when every piece is stored, or when the parents cannot make progress; rejects on a local failure (disk). */
  waitForOutcome(): Promise<DispatchOutcome> {
    if (this.#fatal !== undefined) return Promise.reject(this.#fatal);
    this.#waiter ??= deferred<DispatchOutcome>();
    const waiter = this.#waiter;
    this.#pump();
    return waiter.promise;
  }

  /** Closes every parent stream and abandons the requests in flight. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#retryTimer);
    for (const parent of this.#parents.values()) parent.drop();
    for (const requests of this.#inflight.values()) for (const request of requests) request.controller.abort();
  }

  #activity(): void {
    this.#lastActivity = this.#now();
    this.#pump();
  }

  /**
   * The scheduler told something new: the length (every piece with a digest
   * may become wanted, and parents' earlier announcements may now be past
   * the end), or the digests of `learned` pieces (only those are looked at,
   * so a task of many pieces costs nothing extra per update).
   */
  trustedChanged(learned?: readonly number[]): void {
    const { task } = this.#o;
    if (task.lengthKnown) {
      if (!this.#scanned || learned === undefined) {
        this.#scanned = true;
        for (let number = 0; number < task.totalPieces; number++) this.#wantIfAskable(number);
        for (const parent of this.#parents.values()) this.#checkAnnounced(parent);
      } else {
        for (const number of learned) this.#wantIfAskable(number);
      }
    }
    this.#activity();
  }

  #wantIfAskable(number: number): void {
    const { task, trusted } = this.#o;
    if (number >= task.totalPieces || task.hasPiece(number) || this.#inflight.has(number) || this.#wanted.has(number)) return;
    if (trusted.digest(number) !== undefined) this.#want(number);
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
    if (task.contentLength !== contentLength || task.pieceLength !== pieceLength)
      this.#fail(
        parent,
        -1,
        "other",
        `parent says the task has ${contentLength} bytes in ${pieceLength}-byte pieces; the scheduler says ${task.contentLength} in ${task.pieceLength}`,
      );
    this.#activity();
  }

  /** What a parent announced, judged piece by piece; one look for work afterwards, however many there were. */
  #onPiecesAnnounced(parent: ParentPeer, pieces: readonly AnnouncedPiece[]): void {
    for (const { number, sha256 } of pieces) if (!this.#onPieceAnnounced(parent, number, sha256)) break;
    this.#activity();
  }

  /** False when the announcement cost the parent its place. */
  #onPieceAnnounced(parent: ParentPeer, number: number, sha256: string | undefined): boolean {
    const { task, trusted } = this.#o;
    const limit = task.lengthKnown ? task.totalPieces : MAX_PIECE_COUNT;
    if (!Number.isInteger(number) || number < 0 || number >= limit) {
      this.#fail(parent, -1, "other", `parent announced piece ${number} of a task with ${limit} pieces`);
      return false;
    }
    // Only the digest source's own digests count, and only over a connection that proved its identity.
    const source = trusted.source;
    if (sha256 !== undefined && source?.candidate.peerId === parent.id && this.#o.channels.subjectOf(parent.endpoint) === source.subject) {
      const learned = trusted.learnFromSource(number, sha256);
      if (learned === "conflict") {
        this.#fail(parent, number, "corrupt", `the digest source's digest of piece ${number} contradicts the scheduler's`);
        return false;
      }
      if (learned === "new" && task.lengthKnown) this.#wantIfAskable(number);
    }
    if (!parent.pieces.has(number)) {
      parent.pieces.add(number);
      if (this.#wanted.has(number)) parent.useful.add(number);
      this.#holders.set(number, (this.#holders.get(number) ?? 0) + 1);
    }
    return true;
  }

  /** The piece may be asked for now: every parent holding it becomes useful for it. */
  #want(number: number): void {
    this.#wanted.add(number);
    for (const parent of this.#parents.values()) if (parent.pieces.has(number)) parent.useful.add(number);
  }

  /** The piece is no longer asked for (its bytes are verified); false when it already was not. */
  #unwant(number: number): boolean {
    if (!this.#wanted.delete(number)) return false;
    for (const parent of this.#parents.values()) parent.useful.delete(number);
    return true;
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
    for (const held of parent.pieces) {
      const holders = (this.#holders.get(held) ?? 1) - 1;
      if (holders > 0) this.#holders.set(held, holders);
      else this.#holders.delete(held);
    }
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

  #settle(outcome: DispatchOutcome): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    clearTimeout(this.#idleTimer);
    waiter?.resolve(outcome);
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
      while (this.#requests < this.#o.concurrency) {
        const choice = this.#choose();
        if (choice === undefined) break;
        this.#start(choice.piece, this.#parents.get(choice.parentId)!, choice.duplicate);
      }
    }
    if (this.#requests > 0 || this.#waiter === undefined) return;
    if (this.liveParentIds().length === 0) {
      this.#settle("stuck");
      return;
    }
    // Live parents that hold nothing we need yet: they are still downloading. Wait, but not forever.
    const idle = this.#now() - this.#lastActivity;
    clearTimeout(this.#idleTimer);
    if (idle >= this.#o.idleTimeoutMs) {
      this.#o.log.warn(
        {
          taskId: task.taskId,
          idleMs: idle,
          // Missing pieces without a digest cannot be asked for: what a stuck download waits for.
          missing: task.totalPieces - task.pieceCount,
          askable: this.#wanted.size,
          digests: this.#o.trusted.digestCount,
          liveParents: this.liveParentIds().length,
        },
        "parents made no progress",
      );
      this.#settle("stuck");
      return;
    }
    this.#idleTimer = setTimeout(() => this.#pump(), this.#o.idleTimeoutMs - idle + 10);
    this.#idleTimer.unref();
  }

  #choose(): { parentId: string; piece: number; duplicate: boolean } | undefined {
    const now = this.#now();
    const views = [];
    let backoff = Number.POSITIVE_INFINITY;
    for (const parent of this.#parents.values()) {
      if (parent.dropped) continue;
      if (parent.busyUntil > now) backoff = Math.min(backoff, parent.busyUntil - now);
      for (const until of parent.elsewhere.values()) if (until > now) backoff = Math.min(backoff, until - now);
      views.push({
        id: parent.id,
        useful: parent.useful,
        inflight: parent.inflight,
        usable: parent.token !== undefined && parent.busyUntil <= now,
        speed: parent.speed,
        elsewhere: parent.elsewhere,
      });
    }
    const choice = pickNextPiece({
      parents: views,
      holders: (number) => this.#holders.get(number) ?? 0,
      inflight: this.#inflight,
      perParentLimit: this.#o.perParentLimit,
      window: Math.max(4, this.#o.concurrency),
      scan: CHOICE_SCAN,
      now,
      random: this.#random,
    });
    if (choice === undefined && backoff !== Number.POSITIVE_INFINITY) {
      // Something becomes askable when a backoff ends: look again then.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#pump(), backoff + 5);
      this.#retryTimer.unref();
    }
    return choice;
  }

  #start(number: number, parent: ParentPeer, duplicate: boolean): void {
    const { task, trusted } = this.#o;
    // Only wanted pieces are chosen: below the count, with a digest.
    const range = pieceRangeOf(number, task.pieceLength, task.contentLength);
    const sha256 = trusted.digest(number)!;
    const controller = new AbortController();
    const request: Request = { parentId: parent.id, parent, startedAt: this.#now(), controller };
    const requests = this.#inflight.get(number) ?? [];
    requests.push(request);
    this.#inflight.set(number, requests);
    this.#requests++;
    parent.inflight++;
    this.#o.channels
      .fetchPiece(parent.source, {
        taskId: task.taskId,
        number,
        length: range.length,
        sha256,
        token: parent.token ?? "",
        timeoutMs: this.#o.stallTimeoutMs,
        signal: AbortSignal.any([this.#o.signal, controller.signal]),
      })
      .then(async (lease) => {
        try {
          // Another copy (endgame) may have won; this one is dropped.
          const won = this.#unwant(number);
          if (duplicate) this.#o.metrics.endgameRequests.inc({ result: won ? "won" : "lost" });
          if (!won) return;
          for (const other of this.#inflight.get(number) ?? []) if (other !== request) other.controller.abort();
          const costMs = this.#now() - request.startedAt;
          const piece = { ...range, sha256 };
          parent.bytes += range.length;
          parent.costMs += Math.max(costMs, 1);
          this.#lastActivity = this.#now();
          if (await task.writePiece(piece, lease.bytes)) this.#o.onPiece({ piece, source: "peer", parentId: parent.id, costMs });
        } finally {
          lease.release();
        }
      })
      .catch((err: unknown) => {
        if (this.#stopped || controller.signal.aborted || this.#o.signal.aborted) {
          if (duplicate && controller.signal.aborted) this.#o.metrics.endgameRequests.inc({ result: "lost" });
          return;
        }
        if (!(err instanceof PieceFetchError)) {
          this.#abortWith(err); // A local failure such as a full disk: no parent can help.
          return;
        }
        if (err.reason === "elsewhere") {
          // A super-seeding seed sent this piece to another child: get it there, or here after a while.
          parent.elsewhere.set(number, this.#now() + ELSEWHERE_BACKOFF_MS);
          return;
        }
        if (err.reason === "busy") {
          parent.busyUntil = this.#now() + (err.retryAfterMs || BUSY_BACKOFF_MS);
          this.#o.metrics.pieceFailures.inc({ reason: "busy" });
          return;
        }
        this.#fail(parent, number, err.reason, err.message);
      })
      .finally(() => {
        const left = (this.#inflight.get(number) ?? []).filter((other) => other !== request);
        if (left.length > 0) this.#inflight.set(number, left);
        else this.#inflight.delete(number);
        this.#requests--;
        parent.inflight--;
        this.#pump();
      });
  }
}
