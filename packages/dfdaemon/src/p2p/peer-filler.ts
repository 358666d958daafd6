import type { Agent } from "undici";
import { RpcError, schedulerv1 } from "@lacewing/api";
import { errorMessage, newPeerId, pieceLengthFor, type Logger } from "@lacewing/common";
import type { FillRequest, PieceEvent, TaskFiller } from "../download/task-filler.js";
import { DaemonErrorCode, daemonError } from "../errors.js";
import type { DfdaemonMetrics, PieceFailureReason } from "../metrics.js";
import type { SchedulerPool } from "../scheduler/scheduler-pool.js";
import { AnnounceStream } from "./announce-stream.js";
import type { PeerClients } from "./parent-peer.js";
import { PieceDispatcher } from "./piece-dispatcher.js";

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
  other: schedulerv1.PieceFailureReason.OTHER,
};

type Answer = schedulerv1.AnnouncePeerResponse["response"];

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
  #stream: AnnounceStream | undefined;
  #bytesFromOrigin = 0;
  #bytesFromPeers = 0;

  constructor(options: PeerFillerOptions, request: FillRequest) {
    this.#o = options;
    this.#request = request;
    this.#peerId = newPeerId(options.hostId, request.task.taskId);
    this.#log = options.log.child({ taskId: request.task.taskId, peerId: this.#peerId });
    this.#dispatcher = new PieceDispatcher({
      task: request.task,
      peerId: this.#peerId,
      hostId: options.hostId,
      agent: options.agent,
      clients: options.clients,
      concurrency: options.peerConcurrency,
      perParentLimit: Math.max(2, Math.ceil(options.peerConcurrency / 2)),
      pieceTimeoutMs: options.pieceTimeoutMs,
      idleTimeoutMs: options.pieceTimeoutMs * 2,
      signal: request.signal,
      log: this.#log,
      metrics: options.metrics,
      onPiece: (event) => this.#onPiece(event),
      onPieceFailed: (parentId, number, reason, description) =>
        this.#stream?.send({ case: "pieceFailed", value: { parentId, number: Math.max(number, 0), reason: REASON_CODES[reason], description } }),
      onTaskInfo: () => undefined,
    });
  }

  async run(): Promise<void> {
    const { task } = this.#request;
    const sendInfo = (): void => this.#stream?.send({ case: "taskInfo", value: { info: this.#taskInfo() } });
    task.on("info", sendInfo);
    try {
      await this.#download();
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
      this.#stream?.send({ case: "peerFailed", value: { description: errorMessage(err) } });
      throw err;
    } finally {
      task.off("info", sendInfo);
      this.#dispatcher.stop();
      this.#stream?.close();
    }
  }

  async #download(): Promise<void> {
    let answer = await this.#connect();
    let reschedules = 0;
    for (;;) {
      switch (answer?.case) {
        case "normalTask": {
          await this.#learnLength(answer.value.taskInfo);
          this.#dispatcher.addParents(answer.value.candidateParents);
          this.#log.debug({ parents: answer.value.candidateParents.map((p) => p.peerId) }, "downloading from parents");
          if ((await this.#dispatcher.waitForProgress()) === "complete") return;
          if (++reschedules > this.#o.maxReschedules)
            return this.#backToSource("reschedules", `no parent could serve after ${this.#o.maxReschedules} reschedules`);
          answer = await this.#reschedule();
          break;
        }
        case "needBackToSource":
          return this.#backToSource("scheduler", answer.value.description);
        case "emptyTask":
          if (!this.#request.task.lengthKnown) await this.#request.task.setLength(0, pieceLengthFor(0));
          return;
        case "taskComplete":
        case undefined:
          return this.#backToSource("no_scheduler", "no scheduler could schedule the download");
      }
    }
  }

  /** Registers with the task's scheduler (its owner first); the first answer, or undefined if none answered. */
  async #connect(): Promise<Answer | undefined> {
    const { pool, hostId } = this.#o;
    const { task, spec } = this.#request;
    for (const endpoint of pool.ownersOf(task.taskId)) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const stream = new AnnounceStream(endpoint, pool.client(endpoint), { hostId, taskId: task.taskId, peerId: this.#peerId });
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

  /** Asks for new parents, naming the ones given up on; re-registers if the scheduler went away. */
  async #reschedule(): Promise<Answer | undefined> {
    const failedParentIds = this.#dispatcher.takeFailedParents();
    const stream = this.#stream;
    if (stream !== undefined && !stream.broken) {
      stream.send({ case: "reschedule", value: { failedParentIds, description: "parents cannot make progress" } });
      try {
        const answer = await stream.next();
        if (answer !== undefined) return answer.response;
      } catch (err) {
        this.#log.warn({ scheduler: stream.endpoint, err: errorMessage(err) }, "scheduler stream broke");
      }
    }
    stream?.close();
    this.#stream = undefined;
    return this.#connect();
  }

  async #backToSource(reason: string, description: string): Promise<void> {
    const { spec } = this.#request;
    if (spec.disableBackToSource === true || this.#o.disableBackToSource)
      throw daemonError(DaemonErrorCode.noSource, "unavailable", `peers could not serve the task and back-to-source is disabled: ${description}`);
    this.#dispatcher.stop();
    this.#o.metrics.backToSource.inc({ reason });
    this.#log.info({ reason: description }, "going back to source");
    this.#stream?.send({ case: "backToSourceStarted", value: { description } });
    await this.#o.origin({ ...this.#request, onPiece: (event) => this.#onPiece(event) });
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
          crc32: piece.crc32,
          parentId: event.parentId,
          costMs: Math.min(Math.round(event.costMs), 0xffffffff),
        },
      },
    });
    this.#request.onPiece(event);
  }

  async #learnLength(info: schedulerv1.NormalTaskResponse["taskInfo"]): Promise<void> {
    const { task } = this.#request;
    if (task.lengthKnown || info === undefined || info.contentLength < 0n || info.pieceLength <= 0n) return;
    await task.setLength(Number(info.contentLength), Number(info.pieceLength));
  }

  #taskInfo(): { taskId: string; contentLength: bigint; pieceLength: bigint; totalPieces: number; digest: string } {
    const { task } = this.#request;
    return {
      taskId: task.taskId,
      contentLength: BigInt(task.meta.contentLength),
      pieceLength: BigInt(task.meta.pieceLength),
      totalPieces: task.totalPieces,
      digest: task.meta.digest,
    };
  }
}
