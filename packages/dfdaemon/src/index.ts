/**
 * The node daemon.
 *
 * ```ts
 * const daemon = new Dfdaemon(loadDfdaemonConfig({ flags }), log);
 * await daemon.start();
 * ```
 */
export { Dfdaemon } from "./daemon.js";
export { dfdaemonSchema, loadDfdaemonConfig, type DfdaemonConfig } from "./config.js";
export { TaskStore } from "./storage/task-store.js";
export { StoredTask, type TaskMeta, type StoredPiece } from "./storage/stored-task.js";
export { TaskManager, type DownloadSpec, type DownloadResult } from "./download/task-manager.js";
export { createDfdaemonMetrics, type DfdaemonMetrics, type ByteSource, type PieceFailureReason } from "./metrics.js";
/** A bare client of the piece protocol on the download port, for tests and tools (it checks nothing). */
export { PieceRequester, requestPiece, type PieceAnswer, type RefusalName } from "./testing/piece-requester.js";
export * as pieceFrames from "./transfer/frames.js";
