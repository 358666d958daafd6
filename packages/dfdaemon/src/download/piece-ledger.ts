import { EventEmitter } from "node:events";
import type { DfdaemonMetrics } from "../metrics.js";
import type { StoredPiece } from "../storage/stored-task.js";

/** One piece stored by a filler, and where it came from. */
export interface PieceEvent {
  piece: StoredPiece;
  source: "origin" | "peer";
  /** The parent peer id, empty for the origin. */
  parentId: string;
  /** From the request to the verified bytes. */
  costMs: number;
}

/**
 * The one place a landed piece is recorded: the run's traffic by source,
 * the download metrics (bytes, piece durations) and the event everyone
 * else follows (progress for callers, announcements to the scheduler).
 */
export class PieceLedger extends EventEmitter<{ piece: [PieceEvent] }> {
  readonly traffic = { fromOrigin: 0, fromPeers: 0 };
  readonly #metrics: DfdaemonMetrics | undefined;

  constructor(metrics?: DfdaemonMetrics) {
    super();
    this.setMaxListeners(0);
    this.#metrics = metrics;
  }

  record(event: PieceEvent): void {
    const { piece, source, costMs } = event;
    if (source === "origin") this.traffic.fromOrigin += piece.length;
    else this.traffic.fromPeers += piece.length;
    this.#metrics?.downloadBytes.inc({ source }, piece.length);
    this.#metrics?.pieceDuration.observe({ source }, costMs / 1000);
    this.emit("piece", event);
  }
}
