import { schedulerv1, type TaskInfo } from "@lacewing/api";
import { AsyncQueue, LacewingError, errorMessage, type Logger } from "@lacewing/common";
import { newPeer, type Peer } from "../resource/peer.js";
import { notifyTaskChanged, type Task } from "../resource/task.js";
import type { SchedulerMetrics } from "../metrics/metrics.js";
import { recordPieceCost } from "../scheduling/outlier.js";
import { chooseParents, noteSourceLost, schedulePeer, type SchedulingDeps } from "../scheduling/scheduling.js";
import { responseOf, taskInfoOf, type AnnouncePeerResponseInit } from "./responses.js";

export interface AnnouncePeerDeps extends SchedulingDeps {
  readonly metrics: SchedulerMetrics;
}

type Request = schedulerv1.AnnouncePeerRequest;

/**
 * One AnnouncePeer stream: one peer's download. Requests are handled as
 * they arrive; register and reschedule each get exactly one answer, in
 * order, possibly after waiting for a parent to appear. When the stream
 * ends an unfinished peer is removed; a finished one stays a parent.
 */
export async function* announcePeerStream(
  deps: AnnouncePeerDeps,
  requests: AsyncIterable<Request>,
  callSignal: AbortSignal,
): AsyncIterable<AnnouncePeerResponseInit> {
  const session = new PeerSession(deps);
  const onCallAbort = (): void => {
    // The client is gone: stop waiting for parents and end the answers.
    session.abort();
    session.responses.end();
  };
  callSignal.addEventListener("abort", onCallAbort, { once: true });
  const reading = session.consume(requests);
  try {
    yield* session.responses;
  } finally {
    callSignal.removeEventListener("abort", onCallAbort);
    session.abort();
    session.release();
    // Not awaited: the request stream only ends once the call's status is
    // sent, which happens after this generator returns. It never rejects.
    void reading;
  }
}

class PeerSession {
  readonly responses = new AsyncQueue<AnnouncePeerResponseInit>();
  readonly #deps: AnnouncePeerDeps;
  readonly #id = Symbol("announce-peer");
  readonly #controller = new AbortController();
  #task: Task | undefined;
  #peer: Peer | undefined;
  #decisions: Promise<void> = Promise.resolve();
  #log: Logger;

  constructor(deps: AnnouncePeerDeps) {
    this.#deps = deps;
    this.#log = deps.logger;
  }

  abort(): void {
    this.#controller.abort();
  }

  /** Reads requests until the client stops; never rejects. */
  async consume(requests: AsyncIterable<Request>): Promise<void> {
    try {
      for await (const request of requests) {
        if (this.#controller.signal.aborted) return;
        this.#handle(request);
      }
      // The client closed its side: answers still owed are not wanted any more.
      this.abort();
      await this.#decisions;
      this.responses.end();
    } catch (err) {
      this.abort();
      this.responses.fail(err);
    }
  }

  /** The stream is over: an unfinished peer leaves, a finished one stays a parent. */
  release(): void {
    const task = this.#task;
    const peer = this.#peer;
    if (task === undefined || peer === undefined || peer.session !== this.#id) return;
    peer.session = undefined;
    if (peer.state === "succeeded") return;
    peer.state = "failed";
    noteSourceLost(task, peer);
    this.#deps.registry.removePeer(task, peer.id);
    this.#log.debug("peer left before finishing");
  }

  #handle(request: Request): void {
    const { request: body } = request;
    if (body.case === "register") {
      this.#register(request, body.value);
      return;
    }
    const task = this.#task;
    const peer = this.#peer;
    if (task === undefined || peer === undefined)
      throw new LacewingError("LW_ERR_NOT_REGISTERED", "failed_precondition", "the first AnnouncePeer message must be register");
    if (peer.session !== this.#id || task.peers.get(peer.id) !== peer)
      // Removed under us (DeletePeer, DeleteTask, DeleteHost, host expiry):
      // the daemon has to register again to be scheduled.
      throw new LacewingError("LW_ERR_PEER_NOT_FOUND", "not_found", `peer ${peer.id} is no longer known to the scheduler; register again`);
    const { metrics } = this.#deps;
    peer.updatedAt = this.#deps.now();
    switch (body.case) {
      case "taskInfo": {
        const info = body.value.info;
        if (info === undefined) return;
        if (info.contentLength >= 0n) task.contentLength = Number(info.contentLength);
        if (info.pieceLength > 0n) task.pieceLength = Number(info.pieceLength);
        if (info.totalPieces > 0) task.totalPieces = info.totalPieces;
        if (info.digest !== "") task.digest = info.digest;
        notifyTaskChanged(task);
        return;
      }
      case "backToSourceStarted":
        peer.state = "back_to_source";
        notifyTaskChanged(task);
        return;
      case "pieceFinished": {
        const piece = body.value.piece;
        if (piece === undefined) return;
        peer.pieces.add(piece.number);
        const bytes = Number(piece.length);
        metrics.pieceReports.inc({ result: "finished" });
        if (piece.parentId === "") {
          metrics.trafficBytes.inc({ type: "back_to_source" }, bytes);
        } else {
          metrics.trafficBytes.inc({ type: "peer" }, bytes);
          recordPieceCost(task, piece.parentId, bytes, piece.costMs);
        }
        notifyTaskChanged(task);
        return;
      }
      case "pieceFailed": {
        const { parentId, reason, number } = body.value;
        metrics.pieceReports.inc({ result: "failed" });
        if (parentId === "") return;
        peer.blocklist.add(parentId);
        if (reason === schedulerv1.PieceFailureReason.CORRUPT) {
          const reporters = task.corruptReports.get(parentId) ?? new Set<string>();
          reporters.add(peer.id);
          task.corruptReports.set(parentId, reporters);
        }
        this.#log.debug({ parentId, piece: number, reason: schedulerv1.PieceFailureReason[reason] }, "piece failed");
        return;
      }
      case "reschedule":
        for (const parentId of body.value.failedParentIds) if (parentId !== "") peer.blocklist.add(parentId);
        if (body.value.refresh) {
          this.#refresh(task, peer, new Set(body.value.knownParentIds));
          return;
        }
        peer.reschedules++;
        this.#log.debug({ reschedules: peer.reschedules, blocklist: [...peer.blocklist] }, "reschedule");
        this.#decide(task, peer);
        return;
      case "peerFinished": {
        const { contentLength, totalPieces } = body.value;
        peer.state = "succeeded";
        if (contentLength >= 0n) task.contentLength = Number(contentLength);
        if (totalPieces > 0) task.totalPieces = totalPieces;
        for (let n = 0; n < task.totalPieces; n++) peer.pieces.add(n);
        if (task.backToSourcePeerId === peer.id) task.backToSourcePeerId = undefined;
        this.#log.info({ contentLength: task.contentLength }, "peer finished");
        notifyTaskChanged(task);
        return;
      }
      case "peerFailed":
        peer.state = "failed";
        this.#log.info({ description: body.value.description }, "peer failed");
        noteSourceLost(task, peer);
        return;
      case undefined:
        return;
    }
  }

  #register(request: Request, register: schedulerv1.RegisterPeerRequest): void {
    const { registry } = this.#deps;
    const { hostId, taskId, peerId } = request;
    if (hostId === "" || taskId === "" || peerId === "" || register.download === undefined)
      throw new LacewingError("LW_ERR_BAD_REQUEST", "invalid_argument", "register needs host_id, task_id, peer_id and download");
    if (this.#peer !== undefined && this.#peer.id !== peerId)
      throw new LacewingError("LW_ERR_BAD_REQUEST", "invalid_argument", "one AnnouncePeer stream carries one peer");
    const now = this.#deps.now();
    const host = registry.aliveHost(hostId, now);
    if (host === undefined)
      throw new LacewingError("LW_ERR_HOST_NOT_ANNOUNCED", "failed_precondition", `host ${hostId} has not announced itself; announce the host and retry`, {
        details: { hostId },
      });
    const task = registry.ensureTask(taskId, register.download, now);
    const replaced = task.peers.get(peerId);
    if (replaced !== undefined && replaced.session !== this.#id) replaced.session = undefined;
    const peer = newPeer({ id: peerId, taskId, hostId, triggered: register.download.triggered, heldPieces: register.heldPieces, now });
    peer.session = this.#id;
    registry.addPeer(task, host, peer);
    this.#task = task;
    this.#peer = peer;
    this.#log = this.#deps.logger.child({ taskId, peerId, hostId });
    this.#log.debug({ heldPieces: peer.pieces.size, triggered: peer.triggered }, "peer registered");
    if (register.complete && register.taskInfo !== undefined && register.taskInfo.contentLength >= 0n) {
      this.#deps.metrics.peerRegistrations.inc({ kind: "complete" });
      this.#registerComplete(task, peer, register.taskInfo);
      return;
    }
    this.#deps.metrics.peerRegistrations.inc({ kind: "download" });
    notifyTaskChanged(task);
    this.#decide(task, peer);
  }

  /** A peer that already holds the whole task becomes a finished parent without being scheduled. */
  #registerComplete(task: Task, peer: Peer, info: TaskInfo): void {
    task.contentLength = Number(info.contentLength);
    if (info.pieceLength > 0n) task.pieceLength = Number(info.pieceLength);
    if (info.totalPieces > 0) task.totalPieces = info.totalPieces;
    if (info.digest !== "" && task.digest === "") task.digest = info.digest;
    peer.state = "succeeded";
    for (let n = 0; n < task.totalPieces; n++) peer.pieces.add(n);
    this.#log.debug("peer announced a complete task");
    notifyTaskChanged(task);
    this.#decisions = this.#decisions.then(() => {
      if (!this.#controller.signal.aborted) this.responses.push({ response: { case: "taskComplete", value: { taskInfo: taskInfoOf(task) } } });
    });
  }

  /** Answers a refresh with the best parents right now, without waiting and without counting a reschedule. */
  #refresh(task: Task, peer: Peer, known: ReadonlySet<string>): void {
    const { registry } = this.#deps;
    this.#decisions = this.#decisions.then(() => {
      if (this.#controller.signal.aborted) return;
      const host = registry.hosts.get(peer.hostId);
      // No upload-slot assignment is recorded: the child already downloads, and
      // the parents' real load arrives with their next announcement.
      const parents = host === undefined ? [] : chooseParents(this.#deps, task, peer, host, known);
      this.#deps.metrics.scheduleTotal.inc({ result: "refresh" });
      this.responses.push(responseOf({ kind: "parents", parents }, task, registry));
    });
  }

  /** Queues one answer; answers go out in the order of the requests that asked. */
  #decide(task: Task, peer: Peer): void {
    const { metrics, registry } = this.#deps;
    const signal = this.#controller.signal;
    this.#decisions = this.#decisions.then(async () => {
      if (signal.aborted) return;
      const stopTimer = metrics.scheduleDuration.startTimer();
      try {
        const result = await schedulePeer(this.#deps, task, peer, signal);
        stopTimer();
        metrics.scheduleTotal.inc({ result: result.kind });
        if (result.kind === "back_to_source") {
          metrics.backToSource.inc({ reason: result.cause });
          this.#log.info({ reason: result.reason }, "peer goes back to source");
        } else if (result.kind === "parents") this.#log.debug({ parents: result.parents.map((p) => p.id) }, "parents scheduled");
        if (!signal.aborted) this.responses.push(responseOf(result, task, registry));
      } catch (err) {
        if (signal.aborted) return;
        this.#log.warn({ err: errorMessage(err) }, "scheduling failed");
        this.abort();
        this.responses.fail(err);
      }
    });
  }
}
