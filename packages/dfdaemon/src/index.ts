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
/** The daemon's pure P2P decisions and their constants, for the rollout simulator (test/sim), which runs them against simulated links. */
export { pickNextPiece, type ChoiceInput, type Choice, type InflightRequest, type ParentView } from "./p2p/piece-choice.js";
export { SuperSeed } from "./upload/super-seed.js";
export { BUSY_BACKOFF_MS, CHOICE_SCAN, ELSEWHERE_BACKOFF_MS } from "./p2p/piece-dispatcher.js";
export { MAX_LIVE_PARENTS } from "./p2p/peer-filler.js";
export { RETRY_BUSY_MS } from "./upload/upload-server.js";
export { REFRESH_INTERVAL_MS } from "./daemon.js";
