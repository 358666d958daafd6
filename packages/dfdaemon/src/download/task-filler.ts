import type { Dispatcher } from "undici";
import { isS3Url, type Logger } from "@lacewing/common";
import type { OriginPolicy } from "../source/origin-policy.js";
import type { RangeReader } from "../source/range-reader.js";
import type { PieceBuffers } from "../storage/piece-buffers.js";
import type { StoredTask } from "../storage/stored-task.js";
import type { DownloadSpec } from "./download-spec.js";
import { s3OriginOf, s3ReadErrorOf } from "../source/s3-source.js";
import { fetchFromOrigin } from "./back-to-source.js";
import type { PieceLedger } from "./piece-ledger.js";

export type { PieceEvent } from "./piece-ledger.js";

export interface FillRequest {
  task: StoredTask;
  spec: DownloadSpec;
  /** Aborted when the daemon shuts down. */
  signal: AbortSignal;
  /** Where every stored piece is recorded, whichever filler stored it. */
  ledger: PieceLedger;
  /**
   * Checks the complete task against the digest the download expects (the
   * spec's, or an OCI blob's); rejects with LW_ERR_DIGEST_MISMATCH. A
   * filler calls it once every piece is stored, before it resolves, so it
   * can tell its sources that the content was bad.
   */
  verify: () => Promise<void>;
}

/**
 * Fills a stored task with every piece, from wherever it can, and verifies
 * it (request.verify): the strategy of a TaskManager.
 */
export type TaskFiller = (request: FillRequest) => Promise<void>;

export interface OriginFillerOptions {
  concurrency: number;
  attempts: number;
  log: Logger;
  /** Memory for pieces being received, shared with every other download. */
  buffers: PieceBuffers;
  /** The lean ranged reader for the bulk of the bytes (its connections obey `policy`). */
  reader: RangeReader;
  /** Connections that obey `policy`. */
  dispatcher: Dispatcher;
  policy: OriginPolicy;
}

/** Fills a task straight from its origin with concurrent ranged requests (no scheduler, or back to source). */
export function originFiller(options: OriginFillerOptions): TaskFiller {
  return async ({ task, spec, signal, ledger, verify }) => {
    const s3 = isS3Url(spec.url) ? await s3OriginOf(spec, { signal, dispatcher: options.dispatcher, policy: options.policy }) : undefined;
    try {
      await fetchFromOrigin(
        task,
        s3?.request ?? { url: spec.url, headers: spec.requestHeaders, signal, dispatcher: options.dispatcher, policy: options.policy },
        {
          concurrency: options.concurrency,
          attempts: options.attempts,
          pieceLength: spec.pieceLength,
          log: options.log,
          buffers: options.buffers,
          reader: options.reader,
          onPiece: (piece, costMs) => ledger.record({ piece, source: "origin", parentId: "", costMs }),
        },
      );
    } catch (err) {
      throw s3 === undefined ? err : s3ReadErrorOf(err, spec);
    } finally {
      s3?.close();
    }
    await verify();
  };
}
