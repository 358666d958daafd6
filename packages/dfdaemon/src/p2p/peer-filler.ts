import { RpcError, schedulerv1 } from "@lacewing/api";
import { ErrorCode, deferred, errorMessage, isLacewingError, newPeerId, persistentCacheMessageOf, pieceLengthFor, type Logger } from "@lacewing/common";
import type { FillRequest, PieceEvent, TaskFiller } from "../download/task-filler.js";
import { daemonError } from "../errors.js";
import type { DfdaemonMetrics, PieceFailureReason } from "../metrics.js";
import type { SchedulerPool } from "../scheduler/scheduler-pool.js";
import { AnnounceStream, type Answer } from "./announce-stream.js";
import type { ParentChannels } from "./parent-peer.js";
import { PieceDispatcher } from "./piece-dispatcher.js";
import { TrustedTask } from "./trusted-task.js";

export interface PeerFillerOptions {
  pool: Pick<SchedulerPool, "ownersOf" | "client" | "announceNow">;
  hostId: string;
  channels: ParentChannels;
  /** Used when the scheduler says so, when no scheduler answers, or after too many reschedules (unless the spec disables it). */
  origin: TaskFiller;
  peerConcurrency: number;
  /** Requests pipelined to one parent. */
  perParentLimit: number;
  /** A parent that sends nothing for this long while a piece is asked of it is dropped (a dead or unreachable host). */
  stallTimeoutMs: number;
  /** With nothing in flight and nothing new announced for twice this long, the parents are declared stuck. */
  pieceTimeoutMs: number;
  maxReschedules: number;
  /** Longest wait for the scheduler's answer to a register or reschedule. */
  answerTimeoutMs: number;
  /** How often a downloading peer asks for more parents. */
  refreshIntervalMs: number;
  log: Logger;
  metrics: DfdaemonMetrics;
}

/** Fills tasks from peers as the scheduler directs, falling back to the origin. */
export function peerFiller(options: PeerFillerOptions): TaskFiller {
  return (request) => new PeerTaskRun(options, request).run();
}

const REASON_CODES: Record<PieceFailureReason, schedulerv1.PieceFailureReason> = {
  connect: schedulerv1.PieceFailureReason.CONNECT,
  timeout: schedulerv1.PieceFailureReason.TIMEOUT,
  corrupt: schedulerv1.PieceFailureReason.CORRUPT,
  not_found: schedulerv1.PieceFailureReason.NOT_FOUND,
  busy: schedulerv1.PieceFailureReason.OTHER,
  elsewhere: schedulerv1.PieceFailureReason.OTHER,
  other: schedulerv1.PieceFailureReason.OTHER,
};

/**
 * A peer stops asking for more parents once it has this many usable ones.
 * Parents are kept for the whole download, so the cap decides how many
 * peers of a swarm ever upload: at 8, 16 peers at 50 Mbit/s filled their
 * lists with the first peers that held anything, 6 of the 16 never sent a
 * byte, and the seed sent the blob 4 times over. BitTorrent clients keep
 * tens of connections for the same reason.
 */
export const MAX_LIVE_PARENTS = 16;

/**
 * One download as a peer: register with the task's scheduler, fetch from
 * the parents it names, ask for new ones when they fail, and go back to
 * source when told to, when no scheduler answers, or after maxReschedules.
 * Losing the scheduler mid-download only matters once the current parents
 * run dry.
 */
class PeerTaskRun {
  readonly #o: PeerFillerOptions;
  readonly #request: FillRequest;
  readonly #peerId: string;
  readonly #log: Logger;
  readonly #dispatcher: PieceDispatcher;
  /** The length and piece digests the scheduler vouches for; nothing a parent says replaces them. */
  readonly #trusted = new TrustedTask();
  /** Setting the task's length from the scheduler's, once. */
  #settingLength: Promise<void> | undefined;
  #stream: AnnounceStream | undefined;
  /** Why the scheduler ordered back-to-source while parents were being used. */
  #sourceOrder: string | undefined;
  /** A piece kept from an earlier run contradicts the scheduler's digest (the object changed meanwhile). */
  #keptStale = false;
  /** Settles when #sourceOrder is set, to wake the download loop. */
  readonly #ordered = deferred<"ordered">();
  /** A refresh is waiting for its answer. */
  #refreshing = false;

  constructor(options: PeerFillerOptions, request: FillRequest) {
    this.#o = options;
    this.#request = request;
    this.#peerId = newPeerId(options.hostId, request.task.taskId);
    this.#log = options.log.child({ taskId: request.task.taskId, peerId: this.#peerId });
    this.#dispatcher = new PieceDispatcher({
      task: request.task,
      trusted: this.#trusted,
      peerId: this.#peerId,
      hostId: options.hostId,
      channels: options.channels,
      concurrency: options.peerConcurrency,
      perParentLimit: Math.min(options.perParentLimit, options.peerConcurrency),
      stallTimeoutMs: options.stallTimeoutMs,
      idleTimeoutMs: options.pieceTimeoutMs * 2,
      signal: request.signal,
      log: this.#log,
      metrics: options.metrics,
      onPiece: (event) => request.ledger.record(event),
      onPieceFailed: (parentId, number, reason, description) =>
        this.#stream?.send({ case: "pieceFailed", value: { parentId, number: Math.max(number, 0), reason: REASON_CODES[reason], description } }),
    });
  }

  async run(): Promise<void> {
    const { task } = this.#request;
    const sendInfo = (): void => this.#stream?.send({ case: "taskInfo", value: { info: this.#request.task.info() } });
    const announce = (event: PieceEvent): void => this.#announcePiece(event);
    task.on("info", sendInfo);
    this.#request.ledger.on("piece", announce);
    try {
      await this.#download();
      await this.#request.verify();
      this.#stream?.send({
        case: "peerFinished",
        value: {
          contentLength: BigInt(task.contentLength),
          totalPieces: task.totalPieces,
          bytesFromOrigin: BigInt(this.#request.ledger.traffic.fromOrigin),
          bytesFromPeers: BigInt(this.#request.ledger.traffic.fromPeers),
        },
      });
    } catch (err) {
      // A whole-task mismatch means every copy the scheduler handed out is bad: say so, so they stop being handed out.
      const mismatch = isLacewingError(err) && err.code === ErrorCode.digestMismatch;
      const details = mismatch ? (err as { details: { expected?: unknown; actual?: unknown } }).details : {};
      this.#stream?.send({
        case: "peerFailed",
        value: {
          description: errorMessage(err),
          digestMismatch: mismatch,
          expectedDigest: String(details.expected ?? ""),
          actualDigest: String(details.actual ?? ""),
        },
      });
      throw err;
    } finally {
      task.off("info", sendInfo);
      this.#request.ledger.off("piece", announce);
      this.#dispatcher.stop();
      this.#stream?.close();
    }
  }

  async #download(): Promise<void> {
    const first = await this.#connect();
    switch (first?.case) {
      case "normalTask":
        this.#learnLength(first.value.taskInfo);
        await this.#settingLength;
        this.#addParents(first.value.candidateParents);
        break;
      case "needBackToSource":
        return this.#backToSource("scheduler", first.value.description);
      case "emptyTask":
        if (!this.#request.task.lengthKnown) await this.#request.task.setLength(0, pieceLengthFor(0));
        return;
      default:
        return this.#backToSource("no_scheduler", "no scheduler is reachable");
    }
    const refresher = setInterval(() => this.#refresh(), this.#o.refreshIntervalMs);
    try {
      let reschedules = 0;
      for (;;) {
        if (this.#sourceOrder !== undefined) return this.#backToSource("scheduler", this.#sourceOrder);
        const outcome = await Promise.race([this.#dispatcher.waitForOutcome(), this.#ordered.promise]);
        if (outcome === "complete") return;
        if (outcome === "ordered") continue;
        if (++reschedules > this.#o.maxReschedules)
          return this.#backToSource("reschedules", `no parent could serve after ${this.#o.maxReschedules} reschedules`);
        if (!(await this.#reschedule())) return this.#backToSource("scheduler_lost", "parents ran dry and no scheduler is reachable");
      }
    } finally {
      clearInterval(refresher);
    }
  }

  /** Adds parents; logged so an operator can follow where the bytes came from. */
  #addParents(candidates: schedulerv1.CandidateParent[]): void {
    if (candidates.length === 0) return;
    this.#log.debug({ parents: candidates.map((p) => p.peerId) }, "parents");
    this.#dispatcher.addParents(candidates);
  }

  /** What the scheduler answered to a register, refresh or reschedule. */
  #onAnswer(answer: Answer): void {
    if (answer.case === "normalTask") this.#addParents(answer.value.candidateParents);
    else if (answer.case === "needBackToSource") this.#orderBackToSource(answer.value.description);
  }

  /** The stream broke or ended: the download goes on with its parents; new digests then come only from the task's digest source. */
  #watch(stream: AnnounceStream): void {
    void stream.ended.then(() => {
      if (this.#stream !== stream || stream.closedHere) return;
      this.#stream = undefined;
      this.#log.warn({ scheduler: stream.endpoint, err: errorMessage(stream.error ?? "ended") }, "scheduler stream broke; going on with current parents");
      const source = this.#trusted.source;
      if (source !== undefined) this.#addParents([source.candidate]);
    });
  }

  #orderBackToSource(description: string): void {
    this.#sourceOrder ??= description;
    this.#ordered.resolve("ordered");
  }

  /** Asks for more parents while the download progresses, so children that gained pieces join in; one refresh at a time. */
  #refresh(): void {
    const stream = this.#stream;
    if (stream === undefined || stream.broken || this.#refreshing || this.#dispatcher.liveParentIds().length >= MAX_LIVE_PARENTS) return;
    this.#refreshing = true;
    void stream
      .ask(
        {
          case: "reschedule",
          value: { refresh: true, failedParentIds: this.#dispatcher.takeFailedParents(), knownParentIds: this.#dispatcher.liveParentIds() },
        },
        this.#o.answerTimeoutMs,
      )
      .then((answer) => {
        this.#refreshing = false;
        if (answer !== undefined) this.#onAnswer(answer);
      });
  }

  /**
   * Asks for new parents, naming the ones given up on, and waits (boundedly)
   * for the answer; re-registers if the scheduler went away. False when no
   * scheduler can be reached.
   */
  async #reschedule(): Promise<boolean> {
    const failedParentIds = this.#dispatcher.takeFailedParents();
    for (let attempt = 0; attempt < 2; attempt++) {
      const stream = this.#stream;
      if (stream === undefined || stream.broken) {
        stream?.close();
        this.#stream = undefined;
        const answer = await this.#connect();
        if (answer === undefined) return false;
        this.#onAnswer(answer);
        return true;
      }
      const answer = await stream.ask({ case: "reschedule", value: { failedParentIds, description: "parents cannot make progress" } }, this.#o.answerTimeoutMs);
      if (answer !== undefined) {
        this.#onAnswer(answer);
        return true;
      }
      // The stream broke (or went silent) before answering: register again on a new one.
    }
    return false;
  }

  /** Registers with the task's scheduler (its owner first); the first answer, or undefined if none answered. */
  async #connect(): Promise<Answer | undefined> {
    const { pool, hostId } = this.#o;
    const { task, spec } = this.#request;
    for (const endpoint of pool.ownersOf(task.taskId)) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const stream = new AnnounceStream(endpoint, pool.client(endpoint), { hostId, taskId: task.taskId, peerId: this.#peerId }, (update) =>
          this.#onUpdate(update),
        );
        const answer = await stream.ask(
          {
            case: "register",
            value: {
              download: {
                url: spec.url,
                tag: spec.tag,
                application: spec.application,
                filteredQueryParams: spec.filteredQueryParams,
                requestHeaders: spec.requestHeaders,
                digest: spec.digest,
                pieceLength: BigInt(spec.pieceLength),
                disableBackToSource: spec.disableBackToSource === true,
                triggered: spec.triggered === true,
                // Like the request headers: to the scheduler over mTLS, and on to the seed it triggers; never stored.
                ...(spec.objectStorage === undefined ? {} : { objectStorage: spec.objectStorage }),
                sourceVersion: spec.sourceVersion ?? "",
              },
              heldPieces: task.pieces().map((p) => p.number),
              ...(spec.persistent === undefined ? {} : { persistent: persistentCacheMessageOf(spec.persistent.cache) }),
            },
          },
          this.#o.answerTimeoutMs,
        );
        if (answer !== undefined) {
          this.#stream = stream;
          this.#watch(stream);
          return answer;
        }
        stream.close();
        const err = stream.error ?? new Error("the scheduler ended the stream without an answer");
        if (err instanceof RpcError && err.code === ErrorCode.hostNotAnnounced && attempt === 0 && (await pool.announceNow(endpoint))) continue;
        // The scheduler does not know the persistent task: no other will, and there is no origin to fall back to.
        if (err instanceof RpcError && err.code === ErrorCode.cacheNotFound) throw err;
        this.#log.warn({ scheduler: endpoint, err: errorMessage(err) }, "cannot register with scheduler");
        break;
      }
    }
    return undefined;
  }

  async #backToSource(reason: string, description: string): Promise<void> {
    if (this.#request.spec.disableBackToSource === true)
      throw daemonError(ErrorCode.noSource, "unavailable", `peers could not serve the task and back-to-source is disabled: ${description}`);
    this.#dispatcher.stop();
    // Kept pieces the scheduler contradicted, with no validators to ask the origin whether they are still its: dropped.
    const { task } = this.#request;
    if (this.#keptStale && Object.keys(task.validators).length === 0 && task.pieceCount > 0) {
      this.#log.warn({ pieces: task.pieceCount }, "dropping kept pieces of another version of the object");
      await task.discardPieces();
    }
    this.#o.metrics.backToSource.inc({ reason });
    this.#log.info({ reason: description }, "going back to source");
    this.#stream?.send({ case: "backToSourceStarted", value: { description } });
    // run() verifies the whole task once, whichever way its pieces came.
    await this.#o.origin({ ...this.#request, verify: async () => undefined });
  }

  /** Tells the scheduler of a stored piece, whichever way it came, so children can be sent here for it. */
  #announcePiece(event: PieceEvent): void {
    const { piece } = event;
    this.#stream?.send({
      case: "pieceFinished",
      value: {
        piece: {
          number: piece.number,
          offset: BigInt(piece.offset),
          length: BigInt(piece.length),
          sha256: Buffer.from(piece.sha256, "hex"),
          parentId: event.parentId,
          costMs: Math.min(Math.round(event.costMs), 0xffffffff),
        },
      },
    });
  }

  /** The scheduler learned more of the task: its length, piece digests. */
  #onUpdate(update: schedulerv1.TaskUpdate): void {
    const { lengthLearned, learned } = this.#trusted.apply(update);
    if (lengthLearned) this.#learnLength(undefined);
    // A piece this node kept (from before a restart) that the scheduler's digest contradicts is of another version of
    // the object: peers cannot complete such a copy, the origin decides (back-to-source drops stale pieces).
    const { task } = this.#request;
    const stale = learned.find((number) => {
      const held = task.piece(number);
      return held !== undefined && held.sha256 !== this.#trusted.digest(number);
    });
    if (stale !== undefined) {
      this.#keptStale = true;
      this.#orderBackToSource(`piece ${stale} this node kept differs from the scheduler's digest: the object changed`);
    }
    this.#dispatcher.trustedChanged(learned);
  }

  /**
   * Takes the task's length from the scheduler (never from a parent). A
   * partial copy on this node whose length disagrees cannot be completed
   * from peers: the download goes back to source, which checks the origin.
   */
  #learnLength(info: schedulerv1.NormalTaskResponse["taskInfo"]): void {
    const { task } = this.#request;
    this.#trusted.applyInfo(info);
    const length = this.#trusted.length;
    if (length === undefined || this.#settingLength !== undefined) return;
    if (task.lengthKnown) {
      if (task.contentLength !== length.contentLength || task.pieceLength !== length.pieceLength)
        this.#orderBackToSource(`the scheduler says ${length.contentLength} bytes in ${length.pieceLength}-byte pieces; this node's copy has another length`);
      this.#settingLength = Promise.resolve();
      return;
    }
    this.#settingLength = task.setLength(length.contentLength, length.pieceLength).then(
      () => this.#dispatcher.trustedChanged(),
      (err: unknown) => this.#dispatcher.fail(err),
    );
  }
}
