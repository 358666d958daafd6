import { DownloadSchema, create, schedulerv1, type Download, type TaskInfo } from "@lacewing/api";
import { ErrorCode, AsyncQueue, LacewingError, checkPersistentCache, errorMessage, taskIdOf, type Logger } from "@lacewing/common";
import type { PersistentKeeper } from "../persistent/persistent-keeper.js";
import { ownsHost, type HostOwner, type HostRecord } from "../resource/host.js";
import { newPeer, type Peer } from "../resource/peer.js";
import {
  forgetBackToSourcePeer,
  isBackToSourcePeer,
  notifyTaskChanged,
  recordGeometry,
  recordPieceDigest,
  taintTask,
  type Task,
  type TaskChange,
} from "../resource/task.js";
import type { FlowRecorder } from "../flow/flow-recorder.js";
import type { SchedulerMetrics } from "../metrics/metrics.js";
import { recordPieceCost } from "../scheduling/outlier.js";
import { chooseParents, noteSourceLost, schedulePeer, type SchedulingDeps } from "../scheduling/scheduling.js";
import { responseOf, taskInfoOf, taskUpdateOf, type AnnouncePeerResponseInit } from "./responses.js";
import { MAX_ID_LENGTH, checkDownload, checkId, checkPieceList, checkPieceNumber, checkSha256, checkTaskId, checkTaskInfo } from "./validate.js";

export interface AnnouncePeerDeps extends SchedulingDeps {
  readonly metrics: SchedulerMetrics;
  /** Most peers (downloads and cached tasks) one host may have registered at once. */
  readonly maxPeersPerHost: number;
  /** Where accepted piece reports go for the operators' flow view. */
  readonly flow: FlowRecorder;
  /** Persistent cache tasks (dfcache): their replica counts and removals. */
  readonly persistent: PersistentKeeper;
}

type Request = schedulerv1.AnnouncePeerRequest;

/** Parent ids a peer may name in one reschedule. */
const MAX_PARENT_IDS = 64;

/**
 * One AnnouncePeer stream: one peer's download. Requests are handled as
 * they arrive; register and reschedule each get exactly one answer, in
 * order, possibly after waiting for a parent to appear. Between answers the
 * stream carries task updates: the task's length and piece digests as the
 * scheduler learns them. When the stream ends an unfinished peer is
 * removed; a finished one stays a parent.
 *
 * `owner` is the caller (undefined on an insecure scheduler): the stream may
 * only speak for a host that caller announced.
 */
export async function* announcePeerStream(
  deps: AnnouncePeerDeps,
  requests: AsyncIterable<Request>,
  callSignal: AbortSignal,
  owner: HostOwner | undefined,
): AsyncIterable<AnnouncePeerResponseInit> {
  const session = new PeerSession(deps, owner);
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
  readonly #owner: HostOwner | undefined;
  readonly #id = Symbol("announce-peer");
  readonly #controller = new AbortController();
  #task: Task | undefined;
  #peer: Peer | undefined;
  /** The registering download, credentials included: handed to a seed trigger, never stored in the task. */
  #download: Download | undefined;
  #decisions: Promise<void> = Promise.resolve();
  /** The peer's ids for its log lines; the child logger is made on first use, since most streams log nothing at info. */
  #logIds: { taskId: string; peerId: string; hostId: string } | undefined;
  #childLog: Logger | undefined;
  /** Task changes not sent yet; flushed together so a burst of digests is one message. */
  #pendingInfo = false;
  readonly #pendingDigests = new Set<number>();
  #flushScheduled = false;
  readonly #watch = (change: TaskChange): void => this.#onTaskChange(change);

  constructor(deps: AnnouncePeerDeps, owner: HostOwner | undefined) {
    this.#deps = deps;
    this.#owner = owner;
  }

  get #log(): Logger {
    if (this.#logIds === undefined) return this.#deps.logger;
    this.#childLog ??= this.#deps.logger.child(this.#logIds);
    return this.#childLog;
  }

  /** Debug lines are off in production: checking first spares every stream its child logger. */
  #debug(fields: Record<string, unknown>, message: string): void {
    if (this.#deps.logger.isLevelEnabled("debug")) this.#log.debug(fields, message);
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
    this.#task?.watchers.delete(this.#watch);
    const task = this.#task;
    const peer = this.#peer;
    if (task === undefined || peer === undefined || peer.session !== this.#id) return;
    peer.session = undefined;
    if (peer.state === "succeeded") return;
    peer.state = "failed";
    noteSourceLost(task, peer);
    this.#deps.registry.removePeer(task, peer.id);
    this.#debug({}, "peer left before finishing");
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
      throw new LacewingError(ErrorCode.notRegistered, "failed_precondition", "the first AnnouncePeer message must be register");
    if (peer.session !== this.#id || task.peers.get(peer.id) !== peer)
      // Removed under us (DeletePeer, DeleteTask, DeleteHost, host expiry):
      // the daemon has to register again to be scheduled.
      throw new LacewingError(ErrorCode.peerNotFound, "not_found", `peer ${peer.id} is no longer known to the scheduler; register again`);
    peer.updatedAt = this.#deps.now();
    switch (body.case) {
      case "taskInfo":
        this.#taskInfo(task, peer, body.value.info);
        return;
      case "backToSourceStarted":
        peer.state = "back_to_source";
        notifyTaskChanged(task);
        return;
      case "pieceFinished":
        this.#pieceFinished(task, peer, body.value.piece);
        return;
      case "pieceFailed":
        this.#pieceFailed(task, peer, body.value);
        return;
      case "reschedule": {
        const { failedParentIds, knownParentIds } = body.value;
        if (failedParentIds.length > MAX_PARENT_IDS || knownParentIds.length > MAX_PARENT_IDS)
          throw new LacewingError(ErrorCode.badRequest, "invalid_argument", `a reschedule names at most ${MAX_PARENT_IDS} parents`);
        for (const parentId of failedParentIds) if (peer.parentsGiven.has(parentId)) peer.blocklist.add(parentId);
        if (body.value.refresh) {
          this.#refresh(task, peer, new Set(knownParentIds));
          return;
        }
        peer.reschedules++;
        this.#debug({ reschedules: peer.reschedules, blocklist: [...peer.blocklist] }, "reschedule");
        this.#decide(task, peer);
        return;
      }
      case "peerFinished":
        this.#peerFinished(task, peer, body.value);
        return;
      case "peerFailed":
        this.#peerFailed(task, peer, body.value);
        return;
      case undefined:
        return;
    }
  }

  #register(request: Request, register: schedulerv1.RegisterPeerRequest): void {
    const { registry } = this.#deps;
    const { hostId, taskId, peerId } = request;
    checkId("host_id", hostId);
    checkTaskId(taskId);
    checkId("peer_id", peerId);
    if (this.#peer !== undefined)
      throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "one AnnouncePeer stream carries one peer and registers it once");
    const now = this.#deps.now();
    const persistent = register.persistent !== undefined;
    if (persistent && !register.complete) {
      // A download of a persistent cache task: its id is the importer's, so there is no download to derive it from.
      const known = registry.tasks.get(taskId);
      if (known?.persistent === undefined)
        throw new LacewingError(ErrorCode.cacheNotFound, "not_found", `no persistent cache task ${taskId} is known to this scheduler`);
    }
    const download = persistent
      ? create(DownloadSchema, { disableBackToSource: true, triggered: register.download?.triggered === true })
      : register.complete
        ? register.download
        : checkDownload(register.download);
    if (download === undefined) throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "register needs a download");
    if (!register.complete && !persistent && taskIdOf(download) !== taskId)
      throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "task_id is not the task id of the download it registers");
    const host = registry.aliveHost(hostId, now);
    if (host === undefined)
      throw new LacewingError(ErrorCode.hostNotAnnounced, "failed_precondition", `host ${hostId} has not announced itself; announce the host and retry`, {
        details: { hostId },
      });
    if (!ownsHost(host, this.#owner)) throw new LacewingError(ErrorCode.permissionDenied, "permission_denied", `host ${hostId} belongs to another identity`);
    if (host.peers.size >= this.#deps.maxPeersPerHost && !host.peers.has(peerId))
      throw new LacewingError(ErrorCode.tooManyPeers, "resource_exhausted", `host ${hostId} already has ${host.peers.size} peers registered`);
    const task = registry.ensureTask(taskId, download, now);
    try {
      this.#admit(task, host, request, register, download, now);
    } catch (err) {
      registry.dropIfUnused(task);
      throw err;
    }
  }

  #admit(task: Task, host: HostRecord, request: Request, register: schedulerv1.RegisterPeerRequest, download: Download, now: number): void {
    const { registry } = this.#deps;
    const { hostId, taskId, peerId } = request;
    checkPieceList(register.heldPieces, task.totalPieces, "held_pieces");
    const replaced = task.peers.get(peerId);
    if (replaced !== undefined && replaced.session !== this.#id) replaced.session = undefined;
    // A host that starts the task over (nothing held) leaves behind the copy that failed its digest.
    if (register.heldPieces.length === 0 && !register.complete) task.taintedHosts.delete(hostId);
    const peer = newPeer({ id: peerId, taskId, hostId, triggered: download.triggered, heldPieces: register.heldPieces, now });
    peer.session = this.#id;
    this.#logIds = { taskId, peerId, hostId };
    if (register.complete) {
      if (register.persistent !== undefined) this.#adoptPersistent(task, register.persistent, now);
      else if (task.persistent !== undefined)
        throw new LacewingError(ErrorCode.taskMismatch, "failed_precondition", `task ${taskId} is a persistent cache task; announce it as one`);
      this.#registerComplete(task, peer, register);
      return;
    }
    registry.addPeer(task, host, peer);
    this.#task = task;
    this.#peer = peer;
    this.#download = download;
    this.#debug({ heldPieces: peer.pieces.size, triggered: peer.triggered }, "peer registered");
    this.#deps.metrics.peerRegistrations.inc({ kind: "download" });
    // What the scheduler already trusts about the task goes first, then what it learns.
    task.watchers.add(this.#watch);
    this.#pendingInfo = true;
    for (const number of task.pieceDigests.keys()) this.#pendingDigests.add(number);
    this.#flush();
    notifyTaskChanged(task);
    this.#decide(task, peer);
  }

  /**
   * A peer that already holds the whole task (a daemon re-announcing its
   * cache) becomes a finished parent without being scheduled. Its length and
   * digests must agree with what the scheduler holds; a scheduler that holds
   * none (it restarted) takes them.
   */
  #registerComplete(task: Task, peer: Peer, register: schedulerv1.RegisterPeerRequest): void {
    if (task.taintedHosts.has(peer.hostId))
      throw new LacewingError(ErrorCode.taskTainted, "failed_precondition", "this host's copy of the task failed its digest; delete it and download again");
    const { contentLength, pieceLength } = checkTaskInfo(register.taskInfo, "task_info");
    if (contentLength < 0) throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "a complete registration needs the task's length");
    const problem = recordGeometry(task, contentLength, pieceLength);
    if (problem !== undefined) throw new LacewingError(ErrorCode.taskMismatch, "failed_precondition", `the cached task does not match: ${problem}`);
    if (register.pieceSha256.length !== task.totalPieces)
      throw new LacewingError(ErrorCode.badRequest, "invalid_argument", `a complete registration carries ${task.totalPieces} piece digests`);
    const digests = register.pieceSha256.map((digest, number) => checkSha256(digest, `piece_sha256[${number}]`));
    const disagreeing = digests.findIndex((digest, number) => {
      const known = task.pieceDigests.get(number);
      return known !== undefined && !known.equals(digest);
    });
    if (disagreeing >= 0)
      throw new LacewingError(ErrorCode.taskMismatch, "failed_precondition", `the cached task's piece ${disagreeing} does not match the scheduler's digest`);
    digests.forEach((digest, number) => recordPieceDigest(task, number, digest, peer.id));
    const host = this.#deps.registry.hosts.get(peer.hostId);
    if (host === undefined) throw new LacewingError(ErrorCode.hostNotAnnounced, "failed_precondition", `host ${peer.hostId} has not announced itself`);
    this.#deps.registry.addPeer(task, host, peer);
    this.#task = task;
    this.#peer = peer;
    this.#deps.metrics.peerRegistrations.inc({ kind: "complete" });
    peer.state = "succeeded";
    peer.pieces.fill(task.totalPieces);
    this.#debug({}, "peer announced a complete task");
    notifyTaskChanged(task);
    this.#decisions = this.#decisions.then(() => {
      if (!this.#controller.signal.aborted) this.responses.push({ response: { case: "taskComplete", value: { taskInfo: taskInfoOf(task) } } });
    });
  }

  /**
   * A holder announces a persistent cache task (its import, or its copy
   * after a scheduler restart): the first metadata the scheduler hears wins,
   * bounded; a copy of a task removed cluster-wide is refused, so its holder
   * drops it; an expired one too.
   */
  #adoptPersistent(task: Task, message: NonNullable<schedulerv1.RegisterPeerRequest["persistent"]>, now: number): void {
    const meta = checkPersistentCache(message, now);
    if (this.#deps.persistent.wasRemoved(task.id, meta.expiresAt) || meta.expiresAt <= now)
      throw new LacewingError(ErrorCode.cacheDeleted, "not_found", `persistent cache task ${task.id} was deleted or expired; remove the copy`);
    if (task.persistent === undefined) {
      if (task.peers.size > 0 && task.totalPieces > 0)
        throw new LacewingError(ErrorCode.taskMismatch, "failed_precondition", `task ${task.id} is an ordinary task, not a persistent cache task`);
      task.persistent = { ...meta, placements: new Map() };
      this.#log.info({ replicas: meta.replicas, expiresAt: meta.expiresAt }, "persistent task announced");
    }
    this.#deps.persistent.track(task);
    this.#deps.persistent.kick();
  }

  /** Only a peer that fetches from the origin is believed about the task's length; the first such report wins. */
  #taskInfo(task: Task, peer: Peer, info: TaskInfo | undefined): void {
    if (peer.state !== "back_to_source") return;
    const { contentLength, pieceLength } = checkTaskInfo(info, "task_info");
    if (contentLength < 0) return;
    const problem = recordGeometry(task, contentLength, pieceLength);
    if (problem !== undefined) {
      this.#deps.metrics.pieceReports.inc({ result: "length_conflict" });
      throw new LacewingError(ErrorCode.taskMismatch, "failed_precondition", `the origin's length disagrees with the first fetch: ${problem}`);
    }
    notifyTaskChanged(task);
  }

  #pieceFinished(task: Task, peer: Peer, piece: schedulerv1.PieceFinishedRequest["piece"]): void {
    const { metrics } = this.#deps;
    if (piece === undefined) return;
    checkPieceNumber(piece.number, task.totalPieces);
    if (piece.parentId.length > MAX_ID_LENGTH) throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "piece.parent_id is too long");
    const bytes = Number(piece.length);
    if (piece.parentId === "") {
      // From the origin: the digest is believed only from a peer that said it fetches from there.
      if (peer.state !== "back_to_source") {
        metrics.pieceReports.inc({ result: "rejected" });
        return;
      }
      const outcome = recordPieceDigest(task, piece.number, checkSha256(piece.sha256, "piece.sha256"), peer.id);
      if (outcome === "conflict") {
        // Two origin fetches disagree: the origin changed, or this peer lies. Its copy is not handed out.
        metrics.pieceReports.inc({ result: "digest_conflict" });
        task.excludedParents.add(peer.id);
        this.#log.warn({ piece: piece.number }, "piece from the origin disagrees with the digest recorded first; the peer is not handed out");
        return;
      }
      metrics.trafficBytes.inc({ type: "back_to_source" }, bytes);
    } else {
      // From a parent: the child verified it against the scheduler's digest, so the scheduler must have one.
      const known = task.pieceDigests.get(piece.number);
      if (known === undefined || (piece.sha256.length > 0 && !known.equals(Buffer.from(piece.sha256)))) {
        metrics.pieceReports.inc({ result: "rejected" });
        return;
      }
      metrics.trafficBytes.inc({ type: "peer" }, bytes);
      if (peer.parentsGiven.has(piece.parentId)) recordPieceCost(task, piece.parentId, bytes, piece.costMs);
    }
    peer.pieces.add(piece.number);
    this.#deps.flow.pieceLanded(task, peer, piece.parentId, piece.number, bytes, this.#deps.now());
    metrics.pieceReports.inc({ result: "finished" });
    notifyTaskChanged(task);
  }

  /**
   * A child names a parent that failed it. Only a parent this scheduler
   * handed to the child counts: a peer cannot blame one it never used. A
   * piece that failed its digest excludes the parent for the whole task.
   */
  #pieceFailed(task: Task, peer: Peer, failure: schedulerv1.PieceFailedRequest): void {
    const { parentId, reason, number } = failure;
    this.#deps.metrics.pieceReports.inc({ result: "failed" });
    if (!peer.parentsGiven.has(parentId)) return;
    peer.blocklist.add(parentId);
    if (reason === schedulerv1.PieceFailureReason.CORRUPT) {
      task.excludedParents.add(parentId);
      this.#log.warn({ parentId, piece: number }, "parent served a piece that failed its digest; excluded for the task");
    } else this.#debug({ parentId, piece: number, reason: schedulerv1.PieceFailureReason[reason] }, "piece failed");
  }

  #peerFinished(task: Task, peer: Peer, finished: schedulerv1.PeerFinishedRequest): void {
    if (peer.state === "back_to_source" && finished.contentLength >= 0n) {
      // An origin without a length: the fetch tells it at the end.
      const problem = recordGeometry(task, Number(finished.contentLength), task.pieceLength);
      if (problem !== undefined) this.#log.warn({ problem }, "finished peer's length disagrees with the task's");
      if (isBackToSourcePeer(task, peer.id)) task.tainted = false;
    }
    peer.state = "succeeded";
    if (task.totalPieces > 0) peer.pieces.fill(task.totalPieces);
    forgetBackToSourcePeer(task, peer.id);
    this.#log.info({ contentLength: task.contentLength }, "peer finished");
    notifyTaskChanged(task);
  }

  #peerFailed(task: Task, peer: Peer, failed: schedulerv1.PeerFailedRequest): void {
    peer.state = "failed";
    if (failed.digestMismatch) {
      // Every copy handed out carries the same wrong bytes: stop handing them out, and fetch from the origin next.
      const holders = [...task.peers.values()].filter((other) => other.pieces.size > 0 || other.state === "succeeded" || other.state === "back_to_source");
      taintTask(task, [...holders, peer]);
      this.#deps.metrics.pieceReports.inc({ result: "task_digest_mismatch" });
      this.#log.warn(
        { expected: failed.expectedDigest.slice(0, 80), actual: failed.actualDigest.slice(0, 80), holders: holders.length },
        "a peer's copy of the task failed its digest; its copies are no longer handed out",
      );
    } else this.#log.info({ description: failed.description.slice(0, 512) }, "peer failed");
    noteSourceLost(task, peer);
  }

  #onTaskChange(change: TaskChange): void {
    if (change.kind === "info") this.#pendingInfo = true;
    else this.#pendingDigests.add(change.number);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Sends what the task learned since the last update, in one message. */
  #flush(): void {
    const task = this.#task;
    if (task === undefined || this.#controller.signal.aborted) return;
    const update = taskUpdateOf(task, this.#deps.registry, this.#pendingInfo, this.#pendingDigests);
    this.#pendingInfo = false;
    this.#pendingDigests.clear();
    if (update !== undefined) this.responses.push({ response: { case: "taskUpdate", value: update } });
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
    const download = this.#download!;
    this.#decisions = this.#decisions.then(async () => {
      if (signal.aborted) return;
      const stopTimer = metrics.scheduleDuration.startTimer();
      try {
        const result = await schedulePeer(this.#deps, task, peer, download, signal);
        stopTimer();
        metrics.scheduleTotal.inc({ result: result.kind });
        if (result.kind === "back_to_source") {
          metrics.backToSource.inc({ reason: result.cause });
          this.#log.info({ reason: result.reason }, "peer goes back to source");
        } else if (result.kind === "parents") this.#debug({ parents: result.parents.map((p) => p.id) }, "parents scheduled");
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
