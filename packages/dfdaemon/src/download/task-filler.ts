import type { Logger } from "@lacewing/common";
import type { StoredPiece, StoredTask } from "../storage/stored-task.js";
import type { DownloadSpec } from "./download-spec.js";
import { fetchFromOrigin } from "./back-to-source.js";

/** One piece stored by a filler, and where it came from. */
export interface PieceEvent {
  piece: StoredPiece;
  source: "origin" | "peer";
  /** The parent peer id, empty for the origin. */
  parentId: string;
  costMs: number;
}

export interface FillRequest {
  task: StoredTask;
  spec: DownloadSpec;
  /** Aborted when the daemon shuts down. */
  signal: AbortSignal;
  onPiece: (event: PieceEvent) => void;
}

/** Fills a stored task with every piece, from wherever it can: the strategy of a TaskManager. */
export type TaskFiller = (request: FillRequest) => Promise<void>;

export interface OriginFillerOptions {
  concurrency: number;
  attempts: number;
  log: Logger;
}

/** Fills a task straight from its origin with concurrent ranged requests (no scheduler, or back to source). */
export function originFiller(options: OriginFillerOptions): TaskFiller {
  return ({ task, spec, signal, onPiece }) =>
    fetchFromOrigin(
      task,
      { url: spec.url, headers: spec.requestHeaders, signal },
      {
        concurrency: options.concurrency,
        attempts: options.attempts,
        pieceLength: spec.pieceLength,
        log: options.log,
        onPiece: (piece, costMs) => onPiece({ piece, source: "origin", parentId: "", costMs }),
      },
    );
}
