import { ErrorCode, isLacewingError, MIN_AUTO_PIECE_LENGTH, pieceDigestOf, pieceLengthFor, pieceRangeOf, retry, type Logger } from "@lacewing/common";
import { fetchRange, isRetryableOriginError, probeOrigin, validatorChange, type OriginProbe, type OriginRequest } from "../source/origin-client.js";
import { RangeFallbackError, type RangeReader } from "../source/range-reader.js";
import type { PieceBuffers } from "../storage/piece-buffers.js";
import type { StoredPiece, StoredTask } from "../storage/stored-task.js";
import { daemonError } from "../errors.js";

export interface BackToSourceOptions {
  /** Pieces fetched from the origin at once. */
  concurrency: number;
  /** Tries per piece (first included). */
  attempts: number;
  /** Piece size the caller asked for; 0 lets the length decide. */
  pieceLength: number;
  log: Logger;
  /** Memory for pieces being received, shared with every other download. */
  buffers: PieceBuffers;
  /** The lean ranged reader for the bulk of the bytes. */
  reader: RangeReader;
  /** Called after each stored piece, with how long it took to fetch. */
  onPiece: (piece: StoredPiece, costMs: number) => void;
}

/**
 * Fills `task` from the origin: concurrent ranged requests, one piece each,
 * or one sequential stream when the origin ignores Range or gives no length.
 * Pieces already stored are skipped, so a resumed task fetches only the rest.
 */
export async function fetchFromOrigin(task: StoredTask, origin: OriginRequest, options: BackToSourceOptions): Promise<void> {
  const tryOptions = {
    attempts: options.attempts,
    initialMs: 200,
    maxMs: 3_000,
    retryable: isRetryableOriginError,
    ...(origin.signal ? { signal: origin.signal } : {}),
  };
  const probe = await retry(() => probeOrigin(origin), tryOptions);
  await dropIfStale(task, probe, options.log);
  // A task that already has a piece size (from parents, or an earlier run) keeps it: piece numbers must agree across peers.
  const pieceLength =
    task.lengthKnown && task.contentLength === probe.contentLength
      ? task.pieceLength
      : options.pieceLength > 0
        ? options.pieceLength
        : pieceLengthFor(probe.contentLength);
  if (task.contentLength !== probe.contentLength || task.pieceLength !== pieceLength) {
    if (task.pieceCount > 0 && probe.contentLength >= 0 && task.contentLength !== probe.contentLength) {
      throw daemonError(ErrorCode.originProtocol, "failed_precondition", `origin content length changed from ${task.contentLength} to ${probe.contentLength}`);
    }
    await task.setLength(probe.contentLength, pieceLength);
  }
  // Recorded before the first piece is written, so the pieces and the version they are of survive a crash together.
  // Pieces held without validators (from peers, or an older daemon) are not claimed for this version.
  const held = task.validators;
  if (task.pieceCount === 0 && (held.etag !== probe.validators.etag || held.lastModified !== probe.validators.lastModified)) {
    await task.setValidators(probe.validators);
  }
  if (probe.ranged) {
    await fetchRanged(task, origin, probe.source, options, tryOptions);
    return;
  }
  options.log.info({ taskId: task.taskId, contentLength: probe.contentLength }, "origin ignores Range or gives no length: one sequential stream");
  let body = probe.body;
  await retry(async (attempt) => {
    const stream = attempt === 0 && body ? body : (await probeOrigin(origin)).body;
    body = undefined;
    if (!stream) throw daemonError(ErrorCode.originProtocol, "unavailable", "origin stopped ignoring Range between requests");
    await fetchSequential(task, stream, options);
  }, tryOptions);
}

/**
 * A task resumed from pieces fetched earlier (a restarted daemon, a caller
 * that came back) must not mix them with a newer version of the object:
 * when the validators they were fetched under (or the length) no longer
 * match the origin's, they are dropped and the task starts over. Without
 * validators from both fetches, only a changed length can tell.
 */
async function dropIfStale(task: StoredTask, probe: OriginProbe, log: Logger): Promise<void> {
  if (task.pieceCount === 0 || Object.keys(task.validators).length === 0) return;
  const reason =
    probe.contentLength >= 0 && task.lengthKnown && probe.contentLength !== task.contentLength
      ? `content length ${task.contentLength} is now ${probe.contentLength}`
      : validatorChange(task.validators, probe.validators);
  if (reason === undefined) return;
  log.warn(
    { taskId: task.taskId, pieces: task.pieceCount, reason },
    "origin object changed since the held pieces were fetched: dropping them and starting over",
  );
  await task.discardPieces();
}

/**
 * Ranged workers over the missing pieces, in order. The workers ramp up: one
 * to start, one more each time a piece lands, up to `concurrency`. When the
 * origin's link is the bottleneck, eight pieces started at once would all land
 * late together; ramping lands the first piece (which peers may be waiting
 * for) after one piece-time, and costs a fast origin only its first few pieces.
 */
async function fetchRanged(
  task: StoredTask,
  origin: OriginRequest,
  source: OriginProbe["source"],
  options: BackToSourceOptions,
  tryOptions: Parameters<typeof retry>[1],
): Promise<void> {
  const missing: number[] = [];
  for (let n = 0; n < task.totalPieces; n++) if (!task.hasPiece(n)) missing.push(n);
  let next = 0;
  const workers: Array<Promise<void>> = [];
  const spawn = (): void => {
    if (workers.length >= Math.min(options.concurrency, missing.length)) return;
    const running = worker();
    // Marked handled: the first failure is rethrown below; later ones must not crash the daemon.
    running.catch(() => undefined);
    workers.push(running);
  };
  const worker = async (): Promise<void> => {
    while (next < missing.length) {
      const number = missing[next++]!;
      const range = pieceRangeOf(number, task.pieceLength, task.contentLength);
      const started = Date.now();
      const lease = await options.buffers.acquire(range.length, origin.signal);
      try {
        const sha256 = await retry(() => readPiece(origin, source, options.reader, range.offset, lease.bytes), {
          ...tryOptions,
          onRetry: (err, attempt) =>
            options.log.warn({ taskId: task.taskId, piece: number, attempt, err: (err as Error).message }, "retrying piece from origin"),
        });
        const piece = { ...range, sha256 };
        if (await task.writePiece(piece, lease.bytes)) options.onPiece(piece, Date.now() - started);
      } finally {
        lease.release();
      }
      spawn();
    }
  };
  spawn();
  // Workers join while others run; wait until the list stops growing.
  for (let settled = 0; settled < workers.length; settled++) await workers[settled];
}

/**
 * One piece's bytes into `into`, and their SHA-256: by the lean reader from
 * where the probe's redirects led, or, when the origin answers anything but a
 * plain 206 there, by the full client from the origin URL (which follows
 * redirects anew: a signed redirect may have expired).
 */
async function readPiece(origin: OriginRequest, source: OriginProbe["source"], reader: RangeReader, offset: number, into: Buffer): Promise<string> {
  const fresh = origin.resign === undefined ? undefined : await origin.resign();
  try {
    return await reader.read({ ...source, ...(fresh === undefined ? {} : { url: fresh }), ...(origin.signal ? { signal: origin.signal } : {}) }, offset, into);
  } catch (err) {
    if (!(err instanceof RangeFallbackError)) throw err;
  }
  const body = await fetchRange(fresh === undefined ? origin : { ...origin, url: fresh }, offset, into.byteLength);
  let at = 0;
  for (const chunk of body.chunks) {
    chunk.copy(into, at);
    at += chunk.byteLength;
  }
  return body.sha256;
}

async function fetchSequential(task: StoredTask, body: AsyncIterable<Buffer>, options: BackToSourceOptions): Promise<void> {
  const known = task.contentLength >= 0;
  const pieceLength = task.pieceLength || MIN_AUTO_PIECE_LENGTH;
  let buffer = Buffer.allocUnsafe(pieceLength);
  let filled = 0;
  let number = 0;
  let total = 0;
  let pieceStarted = Date.now();
  const flush = async (): Promise<void> => {
    const bytes = buffer.subarray(0, filled);
    if (!task.hasPiece(number)) {
      const piece = { number, offset: number * pieceLength, length: filled, sha256: pieceDigestOf(bytes) };
      if (await task.writePiece(piece, bytes)) options.onPiece(piece, Date.now() - pieceStarted);
    }
    pieceStarted = Date.now();
    number++;
    filled = 0;
    buffer = Buffer.allocUnsafe(pieceLength);
  };
  try {
    for await (const chunk of body) {
      let at = 0;
      while (at < chunk.byteLength) {
        const take = Math.min(pieceLength - filled, chunk.byteLength - at);
        chunk.copy(buffer, filled, at, at + take);
        filled += take;
        at += take;
        total += take;
        if (known && total > task.contentLength)
          throw daemonError(ErrorCode.originProtocol, "unavailable", `origin sent more than the ${task.contentLength} bytes it announced`);
        if (filled === pieceLength) await flush();
      }
    }
  } catch (err) {
    if (isLacewingError(err)) throw err;
    throw daemonError(ErrorCode.originUnreachable, "unavailable", `connection to origin broke after ${total} bytes`, err);
  }
  if (filled > 0) await flush();
  if (known && total !== task.contentLength) {
    throw daemonError(ErrorCode.originProtocol, "unavailable", `origin sent ${total} of the ${task.contentLength} bytes it announced`);
  }
  if (!known) await task.setLength(total, pieceLength);
}
