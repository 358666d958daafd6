import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { ErrorCode, createDigester, errorMessage, parseDigest, type Logger } from "@lacewing/common";
import type { OpenTask } from "../download/task-manager.js";
import { daemonError } from "../errors.js";
import type { StoredTask } from "../storage/stored-task.js";
import { parseRange, type ByteRange } from "./byte-range.js";
import { fetchBlobRange, type UpstreamCall } from "./upstream.js";

/** How a blob response ended. */
export type BlobOutcome =
  /** Every byte came from the task (peers, the node cache, or the daemon's own back-to-source). */
  | "p2p"
  /** The task failed or stalled midway; the rest came straight from the upstream. */
  | "fallback"
  /** The bytes did not match the digest: the transfer was cut and the task dropped. */
  | "digest_mismatch"
  /** The client went away. */
  | "aborted";

export interface BlobStreamRequest {
  opened: OpenTask;
  digest: string;
  /** The upstream blob URL, for the fallback. */
  url: string;
  /** The client's credentials, for the fallback only; never logged. */
  authorization: string | undefined;
  range: string | undefined;
  /** No new piece for this long counts as a failure of the P2P path. */
  stallTimeoutMs: number;
  call: UpstreamCall;
  log: Logger;
  /** Drops a task whose bytes did not match its digest. */
  dropTask: (taskId: string) => Promise<void>;
}

/**
 * Waits until the task's length is known: before that no response header
 * can be written. Rejects when the task fails, closes or stalls, so the
 * caller can still answer from the upstream.
 */
export async function waitForLength(opened: OpenTask, signal: AbortSignal, stallTimeoutMs: number): Promise<void> {
  await waitUntil(opened, () => opened.task.lengthKnown, signal, stallTimeoutMs);
}

/**
 * Streams a blob to the client from a task as its pieces land, in order.
 * A full-body response is hashed on the way and its last chunk held back
 * until the digest matches, so a client never receives a complete body with
 * wrong bytes: on a mismatch the task is dropped and the caller must cut the
 * connection (the last chunk is never written). If
 * the task fails, closes or stalls midway, the rest of the range is fetched
 * from the upstream with a Range request and the response goes on.
 */
export async function streamBlob(response: ServerResponse, request: BlobStreamRequest, signal: AbortSignal): Promise<BlobOutcome> {
  const { task } = request.opened;
  const length = task.contentLength;
  const answer = parseRange(request.range, length);
  const headers: Record<string, string | number> = {
    "content-type": "application/octet-stream",
    "docker-content-digest": request.digest,
    etag: `"${request.digest}"`,
    "accept-ranges": "bytes",
  };
  if (answer.kind === "unsatisfiable") {
    response.writeHead(416, { ...headers, "content-range": `bytes */${length}`, "content-length": 0 }).end();
    return "p2p";
  }
  const range: ByteRange = answer.kind === "partial" ? answer.range : { start: 0, end: length - 1 };
  if (answer.kind === "partial")
    response.writeHead(206, { ...headers, "content-range": `bytes ${range.start}-${range.end}/${length}`, "content-length": range.end - range.start + 1 });
  else response.writeHead(200, { ...headers, "content-length": length });

  const body = new BodyWriter(response, range.end - range.start + 1, answer.kind === "full" ? parseDigest(request.digest).algorithm : undefined, signal);
  let position = range.start;
  let outcome: BlobOutcome = "p2p";
  // Undefined when the task was evicted since it was opened: the registry serves the blob instead.
  const release = task.acquire();
  try {
    try {
      if (!release) throw new Error("the task left the cache");
      while (position <= range.end) {
        const number = Math.floor(position / task.pieceLength);
        await waitUntil(request.opened, () => task.hasPiece(number), signal, request.stallTimeoutMs);
        // One fstat per piece: bytes changed on disk since they were verified are fetched from the registry instead.
        if (!(await task.checkUnchanged())) throw new Error("the task's data changed on disk");
        const piece = task.piece(number)!;
        const last = Math.min(range.end, piece.offset + piece.length - 1);
        for await (const chunk of task.readStream(position, last - position + 1)) {
          await body.write(chunk as Buffer);
          position += (chunk as Buffer).byteLength;
        }
      }
    } catch (err) {
      if (signal.aborted) return "aborted";
      request.log.warn(
        { taskId: task.taskId, digest: request.digest, at: position, err: errorMessage(err) },
        "P2P stream broke; fetching the rest from the registry",
      );
      outcome = "fallback";
      for await (const chunk of fetchBlobRange(request.url, request.authorization, position, range.end, request.call)) await body.write(chunk);
    }
    if (!body.verified(request.digest)) {
      request.log.error({ taskId: task.taskId, digest: request.digest }, "blob does not match its digest; transfer cut and task dropped");
      await request.dropTask(task.taskId);
      return "digest_mismatch";
    }
    await body.end();
    return outcome;
  } catch (err) {
    if (signal.aborted) return "aborted";
    throw err;
  } finally {
    release?.();
  }
}

/**
 * Writes the body with backpressure, hashing it when the whole blob is sent.
 * The bytes that complete the body are held back until `end()`, so a blob
 * whose digest turns out wrong never reaches the client whole; every byte
 * before them goes out at once (holding back a chunk that is not the last
 * would stall the client a piece behind the download).
 */
class BodyWriter {
  readonly #response: ServerResponse;
  readonly #hash;
  readonly #signal: AbortSignal;
  #remaining: number;
  #held: Buffer | undefined;

  constructor(response: ServerResponse, length: number, algorithm: "sha256" | "sha512" | undefined, signal: AbortSignal) {
    this.#response = response;
    this.#remaining = length;
    this.#hash = algorithm === undefined ? undefined : createDigester(algorithm);
    this.#signal = signal;
  }

  async write(chunk: Buffer): Promise<void> {
    this.#hash?.update(chunk);
    this.#remaining -= chunk.byteLength;
    if (this.#remaining <= 0) {
      this.#held = this.#held === undefined ? chunk : Buffer.concat([this.#held, chunk]);
      return;
    }
    if (!this.#response.write(chunk)) await once(this.#response, "drain", { signal: this.#signal });
  }

  /** True when nothing was hashed (a partial response) or the hash matches. */
  verified(digest: string): boolean {
    if (this.#hash === undefined) return true;
    return `${parseDigest(digest).algorithm}:${this.#hash.digest("hex")}` === digest;
  }

  async end(): Promise<void> {
    const last = this.#held;
    this.#held = undefined;
    await new Promise<void>((resolve) => this.#response.end(last, resolve));
  }
}

/**
 * Resolves once `ready()` holds. Rejects when the task's run fails, the task
 * is closed (evicted or dropped), the run ends without `ready()`, no piece
 * lands for `stallTimeoutMs`, or `signal` aborts.
 */
function waitUntil(opened: OpenTask, ready: () => boolean, signal: AbortSignal, stallTimeoutMs: number): Promise<void> {
  const { task } = opened;
  if (ready()) return Promise.resolve();
  if (task.closed) return Promise.reject(closedError(task));
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      task.off("piece", onProgress);
      task.off("info", onProgress);
      task.off("finished", onFinished);
      task.off("closed", onClosed);
      signal.removeEventListener("abort", onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () => finish(daemonError(ErrorCode.timeout, "deadline_exceeded", `no piece of task ${task.taskId} landed for ${stallTimeoutMs} ms`)),
        stallTimeoutMs,
      );
    };
    const onProgress = (): void => (ready() ? finish() : arm());
    const onFinished = (): void =>
      finish(ready() ? undefined : daemonError(ErrorCode.storage, "internal", `task ${task.taskId} finished without the bytes asked for`));
    const onClosed = (): void => finish(closedError(task));
    const onAbort = (): void => finish(signal.reason);
    task.on("piece", onProgress);
    task.on("info", onProgress);
    task.on("finished", onFinished);
    task.on("closed", onClosed);
    signal.addEventListener("abort", onAbort, { once: true });
    opened.done.then(
      () => onFinished(),
      (err: unknown) => finish(err),
    );
    arm();
  });
}

function closedError(task: StoredTask): Error {
  return daemonError(ErrorCode.taskNotFound, "not_found", `task ${task.taskId} left the store`);
}
