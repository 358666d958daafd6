import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { ErrorCode, createPieceHasher, isPieceLength, pieceDigestOf, pieceLengthFor, PIECE_LENGTH_RULE, type PersistentCacheMeta } from "@lacewing/common";
import { daemonError } from "../errors.js";
import type { StoredTask } from "../storage/stored-task.js";
import type { TaskStore } from "../storage/task-store.js";

export interface ImportOptions {
  /** Absolute path of the file. */
  path: string;
  /** The id asked for (checked by the caller); undefined: the file's sha256. */
  taskId: string | undefined;
  cache: PersistentCacheMeta;
  /** 0 lets the length decide. */
  pieceLength: number;
  /** True while a download fills the task: an import must not write into it. */
  isDownloading: (taskId: string) => boolean;
}

export interface ImportResult {
  task: StoredTask;
  /** "sha256:<hex>" of the whole file. */
  digest: string;
}

/** Pieces written (and awaiting their group commit) at once. */
const PIECES_IN_FLIGHT = 4;

/**
 * Copies a local file into the store as a finished task that needs no
 * origin: pieces with their SHA-256 in the journal, like any download, so
 * serving, re-verification on restart and the piece digests the scheduler
 * gets all work unchanged. The file is read twice: once for its sha256 (the
 * task id when none is given), once to copy it, hashed again so a file that
 * changed meanwhile fails the import. A copy rather than a link: the store's
 * file must be one nobody else can write (see data-identity.ts). Anything
 * left by a failed import is removed; a task this id already holds
 * finished must have the same content, and keeps its persistent metadata
 * (replicas, expiry) if it has any, so every copy agrees on it.
 */
export async function importFile(store: TaskStore, options: ImportOptions): Promise<ImportResult> {
  const file = await openInput(options.path);
  try {
    const size = (await file.stat()).size;
    const pieceLength = options.pieceLength === 0 ? pieceLengthFor(size) : options.pieceLength;
    if (!isPieceLength(pieceLength)) throw daemonError(ErrorCode.badRequest, "invalid_argument", `piece length ${pieceLength} is not ${PIECE_LENGTH_RULE}`);
    const digest = await hashWhole(file, size, options.path);
    const taskId = options.taskId ?? digest.slice("sha256:".length);
    const existing = store.get(taskId);
    if (existing !== undefined && existing.finished && !existing.closed) {
      const held = await existing.contentDigest("sha256");
      if (held !== digest)
        throw daemonError(ErrorCode.taskMismatch, "failed_precondition", `task ${taskId} already holds other content (${held}); import it under another --id`);
      // Already persistent here: its metadata stays what the cluster knows (delete it first to change replicas or TTL).
      if (existing.persistent === undefined || existing.persistent.expiresAt <= Date.now()) await existing.setPersistent(options.cache);
      return { task: existing, digest };
    }
    if (existing !== undefined) {
      if (options.isDownloading(taskId) || existing.activeReaders > 0)
        throw daemonError(ErrorCode.taskBusy, "failed_precondition", `task ${taskId} is being downloaded; try again once it finished`);
      await store.delete(taskId);
    }
    const task = await store.create({
      taskId,
      url: `dfcache://${taskId}`,
      contentLength: -1,
      pieceLength,
      digest,
      finished: false,
      createdAt: Date.now(),
      lastAccessedAt: Date.now(),
      persistent: options.cache,
    });
    try {
      await task.setLength(size, pieceLength);
      const copied = await copyPieces(file, task, size, pieceLength, options.path);
      if (copied !== digest) throw daemonError(ErrorCode.input, "failed_precondition", `${options.path} changed while it was imported; import it again`);
      await task.markFinished();
      await task.touch();
      return { task, digest };
    } catch (err) {
      await store.delete(taskId).catch(() => undefined);
      throw err;
    }
  } finally {
    await file.close();
  }
}

async function openInput(path: string): Promise<FileHandle> {
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw inputError(path, err);
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw daemonError(ErrorCode.input, "invalid_argument", `${path} is not a regular file`);
    return file;
  } catch (err) {
    await file.close();
    throw err;
  }
}

function inputError(path: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === "ENOENT" ? "no such file" : code === "EACCES" || code === "EPERM" ? "permission denied" : (code ?? String(err));
  return daemonError(ErrorCode.input, "invalid_argument", `cannot read ${path}: ${reason}`, err);
}

async function readFully(file: FileHandle, buffer: Buffer, length: number, position: number, path: string): Promise<void> {
  let filled = 0;
  while (filled < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.read(buffer, filled, length - filled, position + filled));
    } catch (err) {
      throw inputError(path, err);
    }
    if (bytesRead === 0) throw daemonError(ErrorCode.input, "failed_precondition", `${path} became shorter while it was imported`);
    filled += bytesRead;
  }
}

async function hashWhole(file: FileHandle, size: number, path: string): Promise<string> {
  const hash = createPieceHasher();
  const buffer = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 4 * 1024 * 1024));
  for (let at = 0; at < size; at += buffer.length) {
    const length = Math.min(buffer.length, size - at);
    await readFully(file, buffer, length, at, path);
    hash.update(buffer.subarray(0, length));
  }
  return `sha256:${hash.digest("hex")}`;
}

/** Writes every piece (a few in flight, one buffer each); returns the sha256 of what was written. */
async function copyPieces(file: FileHandle, task: StoredTask, size: number, pieceLength: number, path: string): Promise<string> {
  const whole = createPieceHasher();
  const buffers = Array.from({ length: Math.min(PIECES_IN_FLIGHT, Math.ceil(size / pieceLength)) }, () => Buffer.allocUnsafe(pieceLength));
  const inFlight: Array<Promise<boolean> | undefined> = [];
  for (let number = 0; number * pieceLength < size; number++) {
    const slot = number % buffers.length;
    await inFlight[slot];
    const offset = number * pieceLength;
    const length = Math.min(pieceLength, size - offset);
    const bytes = buffers[slot]!.subarray(0, length);
    await readFully(file, bytes, length, offset, path);
    whole.update(bytes);
    inFlight[slot] = task.writePiece({ number, offset, length, sha256: pieceDigestOf(bytes) }, bytes);
  }
  await Promise.all(inFlight);
  return `sha256:${whole.digest("hex")}`;
}
