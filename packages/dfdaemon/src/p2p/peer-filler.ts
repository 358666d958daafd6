import type { Agent } from "undici";
import { RpcError, schedulerv1 } from "@lacewing/api";
import { deferred, errorMessage, isLacewingError, newPeerId, pieceLengthFor, type Deferred, type Logger } from "@lacewing/common";
import type { FillRequest, PieceEvent, TaskFiller } from "../download/task-filler.js";
import { DaemonErrorCode, daemonError } from "../errors.js";
import type { DfdaemonMetrics, PieceFailureReason } from "../metrics.js";
import type { SchedulerPool } from "../scheduler/scheduler-pool.js";
import { AnnounceStream } from "./announce-stream.js";
import type { PeerClients } from "./parent-peer.js";
import { PieceDispatcher } from "./piece-dispatcher.js";
import { taskInfoOf } from "./task-info.js";
import { TrustedTask } from "./trusted-task.js";

export interface PeerFillerOptions {
  pool: SchedulerPool;
  hostId: string;
  agent: Agent;
  clients: PeerClients;
  /** Used when the scheduler says so, when no scheduler answers, or after too many reschedules. */
  origin: TaskFiller;
  peerConcurrency: number;
  pieceTimeoutMs: number;
  maxReschedules: number;
  disableBackToSource: boolean;
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

type Answer = schedulerv1.AnnouncePeerResponse["response"];

/** How often a downloading peer asks for more parents. */
const REFRESH_INTERVAL_MS = 1_000;
/** Pieces in flight from one parent: enough to fill its link, few enough that every child gets a share. */
const PER_PARENT_LIMIT = 4;
/** A peer stops asking for more parents once it has this many usable ones. */
const MAX_LIVE_PARENTS = 8;

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
  /** Settles when #sourceOrder is set, to wake the download loop. */
  readonly #ordered = deferred<"ordered">();
  /** Waiting for the answer to a reschedule. */
  #answered: Deferred<void> | undefined;
  /** Refresh requests sent and not answered yet; their answers come before a reschedule's. */
  #pendingRefreshes = 0;
  #bytesFromOrigin = 0;
  #bytesFromPeers = 0;

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
      agent: options.agent,
      clients: options.clients,
      concurrency: options.peerConcurrency,
      perParentLimit: Math.min(PER_PARENT_LIMIT, options.peerConcurrency),
      pieceTimeoutMs: options.pieceTimeoutMs,
      idleTimeoutMs: options.pieceTimeoutMs * 2,
      signal: request.signal,
      log: this.#log,
      metrics: options.metrics,
      onPiece: (event) => this.#onPiece(event),
      onPieceFailed: (parentId, number, reason, description) =>
        this.#stream?.send({ case: "pieceFailed", value: { parentId, number: Math.max(number, 0), reason: REASON_CODES[reason], description } }),
    });
  }

  async run(): Promise<void> {
    const { task } = this.#request;
    const sendInfo = (): void => this.#stream?.send({ case: "taskInfo", value: { info: taskInfoOf(this.#request.task) } });
    task.on("info", sendInfo);
    try {
      await this.#download();
      await this.#request.verify();
      this.#stream?.send({
        case: "peerFinished",
        value: {
          contentLength: BigInt(task.meta.contentLength),
          totalPieces: task.totalPieces,
          bytesFromOrigin: BigInt(this.#bytesFromOrigin),
          bytesFromPeers: BigInt(this.#bytesFromPeers),
        },
      });
    } catch (err) {
      // A whole-task mismatch means every copy the scheduler handed out is bad: say so, so they stop being handed out.
      const mismatch = isLacewingError(err) && err.code === DaemonErrorCode.digestMismatch;
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
    const refresher = setInterval(() => this.#refresh(), REFRESH_INTERVAL_MS);
    try {
      let reschedules = 0;
      for (;;) {
        if (this.#sourceOrder !== undefined) return this.#backToSource("scheduler", this.#sourceOrder);
        const outcome = await Promise.race([this.#dispatcher.waitForProgress(), this.#ordered.promise]);
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

  /** Reads the scheduler's answers after the first one, for as long as the stream lives. */
  #read(stream: AnnounceStream): void {
    void (async () => {
      try {
        for (;;) {
          const answer = await stream.next();
          if (answer === undefined) break;
          const { response } = answer;
          if (response.case === "normalTask") {
            this.#log.trace({ parents: response.value.candidateParents.length, refresh: this.#pendingRefreshes > 0 }, "scheduler answered");
            this.#addParents(response.value.candidateParents);
            if (this.#pendingRefreshes > 0) this.#pendingRefreshes--;
            else this.#answered?.resolve();
          } else if (response.case === "needBackToSource") {
            this.#orderBackToSource(response.value.description);
            this.#answered?.resolve();
          } else {
            this.#answered?.resolve();
          }
        }
      } catch (err) {
        if (this.#stream === stream)
          this.#log.warn({ scheduler: stream.endpoint, err: errorMessage(err) }, "scheduler stream broke; going on with current parents");
      }
      if (this.#stream === stream) {
        this.#stream = undefined;
        // Without the scheduler, new digests come only from the task's digest source: make sure it is a parent.
        const source = this.#trusted.source;
        if (source !== undefined) this.#addParents([source.candidate]);
        this.#answered?.resolve();
      }
    })();
  }

  #orderBackToSource(description: string): void {
    this.#sourceOrder ??= description;
    this.#ordered.resolve("ordered");
  }

  /** Asks for more parents while the download progresses, so children that gained pieces join in. */
  #refresh(): void {
    const stream = this.#stream;
    if (stream === undefined || stream.broken || this.#answered !== undefined || this.#dispatcher.liveParentIds().length >= MAX_LIVE_PARENTS) return;
    this.#pendingRefreshes++;
    stream.send({
      case: "reschedule",
      value: { refresh: true, failedParentIds: this.#dispatcher.takeFailedParents(), knownParentIds: this.#dispatcher.liveParentIds() },
    });
  }

  /**
   * Asks for new parents, naming the ones given up on, and waits for the
   * answer; re-registers if the scheduler went away. False when no
   * scheduler can be reached.
   */
  async #reschedule(): Promise<boolean> {
    const failedParentIds = this.#dispatcher.takeFailedParents();
    const stream = this.#stream;
    if (stream === undefined || stream.broken) {
      stream?.close();
      this.#stream = undefined;
      const answer = await this.#connect();
      if (answer === undefined) return false;
      if (answer.case === "normalTask") this.#addParents(answer.value.candidateParents);
      else if (answer.case === "needBackToSource") this.#orderBackToSource(answer.value.description);
      return true;
    }
    const answered = deferred<void>();
    this.#answered = answered;
    stream.send({ case: "reschedule", value: { failedParentIds, description: "parents cannot make progress" } });
    await answered.promise;
    this.#answered = undefined;
    return this.#stream !== undefined || (await this.#reschedule());
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
        stream.send({
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
              disableBackToSource: spec.disableBackToSource === true || this.#o.disableBackToSource,
              triggered: spec.triggered === true,
            },
            heldPieces: task.pieces().map((p) => p.number),
          },
        });
        try {
          const answer = await stream.next();
          if (answer === undefined) throw new Error("the scheduler ended the stream without an answer");
          this.#stream = stream;
          this.#read(stream);
          return answer.response;
        } catch (err) {
          stream.close();
          if (err instanceof RpcError && err.code === "LW_ERR_HOST_NOT_ANNOUNCED" && attempt === 0 && (await pool.announceNow(endpoint))) continue;
          this.#log.warn({ scheduler: endpoint, err: errorMessage(err) }, "cannot register with scheduler");
          break;
        }
      }
    }
    return undefined;
  }

  async #backToSource(reason: string, description: string): Promise<void> {
    const { spec } = this.#request;
    if (spec.disableBackToSource === true || this.#o.disableBackToSource)
      throw daemonError(DaemonErrorCode.noSource, "unavailable", `peers could not serve the task and back-to-source is disabled: ${description}`);
    this.#dispatcher.stop();
    this.#o.metrics.backToSource.inc({ reason });
    this.#log.info({ reason: description }, "going back to source");
    this.#stream?.send({ case: "backToSourceStarted", value: { description } });
    // run() verifies the whole task once, whichever way its pieces came.
    await this.#o.origin({ ...this.#request, onPiece: (event) => this.#onPiece(event), verify: async () => undefined });
  }

  #onPiece(event: PieceEvent): void {
    if (event.source === "origin") this.#bytesFromOrigin += event.piece.length;
    else this.#bytesFromPeers += event.piece.length;
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
    this.#request.onPiece(event);
  }

  /** The scheduler learned more of the task: its length, piece digests. */
  #onUpdate(update: schedulerv1.TaskUpdate): void {
    const { lengthLearned } = this.#trusted.apply(update);
    if (lengthLearned) this.#learnLength(undefined);
    this.#dispatcher.trustedChanged();
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
      if (task.meta.contentLength !== length.contentLength || task.meta.pieceLength !== length.pieceLength)
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
