import { requireRole, type dfdaemonv1, type MessageInitShape, type PieceInfoSchema, type ServiceImpl } from "@lacewing/api";
import { ErrorCode, AsyncQueue, errorMessage, LacewingError, type Logger, MAX_PIECE_COUNT, MEMBER_ROLES, redactUrl } from "@lacewing/common";
import { downloadSpecOf } from "../download/download-spec.js";
import type { TaskManager } from "../download/task-manager.js";
import { daemonError } from "../errors.js";
import type { StoredPiece, StoredTask } from "../storage/stored-task.js";
import type { TaskStore } from "../storage/task-store.js";
import type { UploadGrants } from "../upload/upload-grants.js";
import type { PersistentCache } from "../persistent/persistent-cache.js";

type SyncResponse = MessageInitShape<typeof dfdaemonv1.SyncPiecesResponseSchema>;

export interface PeerServiceDeps {
  store: TaskStore;
  tasks: TaskManager;
  grants: UploadGrants;
  log: Logger;
  /** dfcache's persistent tasks; without it (unit tests of the other calls) their orders are refused. */
  persistent?: PersistentCache;
}

const TASK_ID = /^[0-9a-f]{64}$/;

function badRequest(message: string): LacewingError {
  return new LacewingError(ErrorCode.badRequest, "invalid_argument", message);
}

/**
 * DfdaemonPeer: what other peers and the scheduler call on this daemon.
 * SyncPieces (cluster members only) hands a child the grant for this task's
 * pieces, tells it which pieces this peer holds and then each new one the
 * moment it is journaled, so the child can fetch piece k while this peer is
 * still fetching later ones (pipelining). TriggerDownload is the
 * scheduler's alone: nobody else may make this node fetch a URL.
 */
export function peerService(deps: PeerServiceDeps, children: Set<string>): ServiceImpl<typeof dfdaemonv1.DfdaemonPeer> {
  return {
    syncPieces(request, context) {
      requireRole(context, MEMBER_ROLES, "SyncPieces");
      if (!TASK_ID.test(request.taskId)) throw badRequest("task_id must be 64 lowercase hex digits");
      if (request.peerId.length > 256 || request.hostId.length > 256) throw badRequest("peer_id and host_id are at most 256 bytes");
      if (request.heldPieces.length > MAX_PIECE_COUNT) throw badRequest(`held_pieces has more than ${MAX_PIECE_COUNT} entries`);
      const task = deps.store.get(request.taskId);
      if (task === undefined || task.closed) throw daemonError(ErrorCode.taskNotFound, "not_found", `task ${request.taskId} is not held by this peer`);
      const key = `${request.hostId}/${request.peerId}`;
      children.add(key);
      const grant = deps.grants.issue(task.taskId);
      const responses = afterVerifying(task, () => syncStream(task, grant.token, new Set(request.heldPieces), context.signal));
      return withCleanup(responses, () => {
        children.delete(key);
        grant.revoke();
      });
    },

    async triggerDownload(request, context) {
      requireRole(context, ["scheduler"], "TriggerDownload");
      if (request.persistentTaskId !== "") {
        // A replica of a persistent cache task: from peers only, kept with the scheduler's metadata.
        persistentOf(deps).placeReplica(request.persistentTaskId, request.persistent);
        return { taskId: request.persistentTaskId, finished: false, description: "accepted" };
      }
      const spec = { ...downloadSpecOf(request.download), outputPath: "", triggered: true };
      const run = deps.tasks.download(spec, {});
      if (!request.wait) {
        run.then(
          (result) => deps.log.info({ taskId: result.taskId }, "triggered download finished"),
          (err: unknown) => deps.log.warn({ url: redactUrl(spec.url, { query: "all" }), err: errorMessage(err) }, "triggered download failed"),
        );
        return { taskId: "", finished: false, description: "accepted" };
      }
      try {
        const result = await run;
        return { taskId: result.taskId, finished: true, description: "" };
      } catch (err) {
        return { taskId: "", finished: false, description: errorMessage(err) };
      }
    },

    async deletePersistentTask(request, context) {
      // Only a scheduler orders a copy removed: it decides when a persistent task is deleted or expired cluster-wide.
      requireRole(context, ["scheduler"], "DeletePersistentTask");
      return { held: persistentOf(deps).deleteOrdered(request.taskId) };
    },
  };
}

function persistentOf(deps: PeerServiceDeps): PersistentCache {
  if (deps.persistent === undefined) throw new LacewingError(ErrorCode.unimplemented, "failed_precondition", "this peer keeps no persistent cache tasks");
  return deps.persistent;
}

/**
 * A piece as a child hears of it. The digest is this peer's own: a child
 * takes it only from the peer the scheduler named as the task's digest
 * source, and checks every piece against a digest either way.
 */
function pieceInfoOf(piece: StoredPiece): MessageInitShape<typeof PieceInfoSchema> {
  return { number: piece.number, offset: BigInt(piece.offset), length: BigInt(piece.length), sha256: Buffer.from(piece.sha256, "hex") };
}

/** Most pieces in one SyncPieces message (about 60 bytes each). */
const PIECES_PER_MESSAGE = 4096;

/**
 * The grant, the task's info once its length is known, every stored piece
 * the child lacks, then new pieces as they land, then `finished`. Pieces go
 * out in batches: the ones held when the stream opens in one message, then
 * whatever landed in one turn of the event loop (a storage commit stores
 * several at once), so a task of many small pieces does not cost a message
 * per piece per child. After `finished` the stream stays open, and its grant
 * valid, until the child closes it: ending it there revoked the grant of
 * every child still fetching from a parent that had just completed the task.
 * Ends with an error if the task leaves this peer's store.
 */
function syncStream(task: StoredTask, token: string, held: Set<number>, signal: AbortSignal): AsyncQueue<SyncResponse> {
  const queue = new AsyncQueue<SyncResponse>();
  queue.push({ response: { case: "grant", value: { token } } });
  const sent = new Set<number>(held);
  let infoSent = false;
  let batch: Array<MessageInitShape<typeof PieceInfoSchema>> = [];
  let flushing: NodeJS.Immediate | undefined;
  const flush = (): void => {
    clearImmediate(flushing);
    flushing = undefined;
    for (let at = 0; at < batch.length; at += PIECES_PER_MESSAGE)
      queue.push({ response: { case: "pieces", value: { pieces: batch.slice(at, at + PIECES_PER_MESSAGE) } } });
    batch = [];
  };
  const sendPiece = (piece: StoredPiece): void => {
    if (!infoSent || sent.has(piece.number)) return;
    sent.add(piece.number);
    batch.push(pieceInfoOf(piece));
    flushing ??= setImmediate(flush);
  };
  const sendInfo = (): void => {
    if (infoSent || !task.lengthKnown) return;
    infoSent = true;
    queue.push({ response: { case: "taskInfo", value: task.info() } });
    for (const piece of task.pieces()) sendPiece(piece);
    flush();
  };
  const onFinished = (): void => {
    sendInfo();
    for (const piece of task.pieces()) sendPiece(piece);
    flush();
    queue.push({ response: { case: "finished", value: task.info() } });
    // The stream stays open, and the grant with it, until the child is done with this parent and closes it.
    stopAnnouncing();
  };
  const onClosed = (): void => {
    stop();
    queue.fail(daemonError(ErrorCode.taskNotFound, "not_found", `task ${task.taskId} left this peer's cache`));
  };
  const onAbort = (): void => {
    stop();
    queue.end();
  };
  const stopAnnouncing = (): void => {
    clearImmediate(flushing);
    task.off("info", sendInfo);
    task.off("piece", sendPiece);
    task.off("finished", onFinished);
  };
  const stop = (): void => {
    stopAnnouncing();
    task.off("closed", onClosed);
    signal.removeEventListener("abort", onAbort);
  };
  task.on("info", sendInfo);
  task.on("piece", sendPiece);
  task.on("finished", onFinished);
  task.on("closed", onClosed);
  signal.addEventListener("abort", onAbort, { once: true });
  if (task.finished) onFinished();
  else sendInfo();
  return queue;
}

/** Pieces whose bytes changed on disk since they were verified are dropped first, so they are never announced. */
async function* afterVerifying<T>(task: StoredTask, source: () => AsyncIterable<T>): AsyncIterable<T> {
  await task.verifyIfChanged();
  if (task.closed) throw daemonError(ErrorCode.taskNotFound, "not_found", `task ${task.taskId} left this peer's cache`);
  yield* source();
}

async function* withCleanup<T>(source: AsyncIterable<T>, cleanup: () => void): AsyncIterable<T> {
  try {
    yield* source;
  } finally {
    cleanup();
  }
}
