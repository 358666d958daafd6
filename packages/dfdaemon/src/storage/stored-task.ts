import { EventEmitter } from "node:events";
import { constants, createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { chmod, open, readFile, rename, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { MessageInitShape, TaskInfoSchema } from "@lacewing/api";
import {
  ErrorCode,
  createDigester,
  deferred,
  pieceCountOf,
  pieceDigestOf,
  type Deferred,
  type DigestAlgorithm,
  type PersistentCacheMeta,
} from "@lacewing/common";
import { daemonError } from "../errors.js";
import type { OriginValidators } from "../source/origin-client.js";
import { DataGuard, detachDataFile } from "./data-identity.js";

/** What is kept of a task on disk besides its bytes. Never holds request headers. */
export interface TaskMeta {
  taskId: string;
  url: string;
  /** -1 while unknown. */
  contentLength: number;
  pieceLength: number;
  digest: string;
  finished: boolean;
  createdAt: number;
  lastAccessedAt: number;
  /**
   * Set for a persistent cache task (dfcache): kept until `expiresAt`
   * whatever the TTL and watermarks say, and re-announced with this metadata.
   */
  persistent?: PersistentCacheMeta;
  /**
   * The origin's ETag / Last-Modified when the pieces were fetched from it,
   * so a resumed download can tell a changed object from the one its pieces
   * are of. Absent in metadata of older daemons and for pieces only peers gave.
   */
  validators?: OriginValidators;
}

/**
 * Makes room for `bytes` more bytes of `task` (evicting idle tasks if it
 * must) or rejects with LW_ERR_DISK_FULL; called when a task's length
 * becomes known, before its pieces are written.
 */
export type Reserve = (task: StoredTask, bytes: number) => Promise<void>;

export interface StoredPiece {
  number: number;
  offset: number;
  length: number;
  /** SHA-256 of the piece's bytes, hex (pieceDigestOf). */
  sha256: string;
}

/**
 * One task's bytes (`data`, pieces written at their offsets), its metadata
 * (`meta.json`, replaced atomically) and its piece journal (`pieces.log`, one
 * JSON line per piece appended only after the piece's bytes are synced). A
 * piece is visible to readers only once it is in the journal.
 */
export class StoredTask extends EventEmitter<{ piece: [StoredPiece]; info: []; finished: []; closed: [] }> {
  readonly dir: string;
  /** Replaced whole, never mutated, so #writeMeta writes one consistent version; read through the getters. */
  #meta: TaskMeta;
  readonly #pieces = new Map<number, StoredPiece>();
  #data: FileHandle | undefined;
  #journal: FileHandle | undefined;
  /**
   * Readers (uploads to peers, proxy streams, outputs) in progress; a task
   * with readers is never evicted. Count yourself in with `acquire()`.
   */
  activeReaders = 0;
  /** Asked before the task grows to its full length; rejects when it cannot fit. */
  readonly #reserve: Reserve | undefined;
  #savedAccessAt: number;
  #metaWrites: Promise<void> = Promise.resolve();
  #completedBytes = 0;
  #closed = false;
  /** Pieces written and waiting for the next sync before they are journaled. */
  #unsynced: Array<{ piece: StoredPiece; committed: Deferred<boolean> }> = [];
  #syncing: Promise<void> | undefined;
  /** The whole content's digest by algorithm, hashed once per task however many callers ask. */
  readonly #contentDigests = new Map<DigestAlgorithm, Promise<string>>();
  /** Notices changes to the finished data file made through hard-linked outputs; see data-identity.ts. */
  readonly #guard = new DataGuard({ file: () => this.#data, verify: () => this.#reverify() });

  private constructor(dir: string, meta: TaskMeta, reserve: Reserve | undefined) {
    super();
    this.setMaxListeners(0);
    this.dir = dir;
    this.#meta = meta;
    this.#reserve = reserve;
    this.#savedAccessAt = meta.lastAccessedAt;
  }

  static async create(dir: string, meta: TaskMeta, reserve?: Reserve): Promise<StoredTask> {
    const task = new StoredTask(dir, meta, reserve);
    await task.#openFiles();
    await task.#saveMeta();
    return task;
  }

  /**
   * Loads a task from disk. Every journaled piece is re-checked against its
   * SHA-256, so a piece torn by a crash (or changed on disk) is dropped and
   * fetched again (journal lines of older daemons, without sha256, too); a
   * finished task that lost pieces gets a new data file (see #detach), one
   * that kept them all is sealed as verified.
   */
  static async load(dir: string, reserve?: Reserve): Promise<StoredTask> {
    const meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8")) as TaskMeta;
    const task = new StoredTask(dir, meta, reserve);
    await task.#openFiles();
    const identity = meta.finished ? await task.#guard.prepare() : undefined;
    let journal = "";
    try {
      journal = await readFile(join(dir, "pieces.log"), "utf8");
    } catch {
      // No journal yet: no pieces.
    }
    for (const line of journal.split("\n")) {
      if (line.trim() === "") continue;
      let piece: StoredPiece;
      try {
        piece = JSON.parse(line) as StoredPiece;
      } catch {
        continue; // A torn last line.
      }
      if (await task.#intact(piece)) task.#addPiece(piece);
    }
    if (meta.finished && task.#pieces.size !== task.totalPieces) {
      await task.#detach();
      task.#meta = { ...meta, finished: false };
      await task.#saveMeta();
    } else if (identity) task.#guard.seal(identity);
    return task;
  }

  async #openFiles(): Promise<void> {
    // Read-write, created if missing; not "a" mode, which ignores write offsets on Linux.
    const data = join(this.dir, "data");
    this.#data = await open(data, constants.O_RDWR | constants.O_CREAT).catch(async (err: unknown) => {
      // A finished task's file is read-only; its owner (this daemon, unless root) may have to write pieces into it again.
      if ((err as NodeJS.ErrnoException).code !== "EACCES") throw err;
      await chmod(data, 0o644);
      return open(data, constants.O_RDWR);
    });
    this.#journal = await open(join(this.dir, "pieces.log"), "a");
  }

  get taskId(): string {
    return this.#meta.taskId;
  }

  /** The origin URL without its query string. */
  get url(): string {
    return this.#meta.url;
  }

  /** The digest the task was created for ("" when none was given). */
  get digest(): string {
    return this.#meta.digest;
  }

  /** -1 while unknown. */
  get contentLength(): number {
    return this.#meta.contentLength;
  }

  /** 0 while unknown. */
  get pieceLength(): number {
    return this.#meta.pieceLength;
  }

  /** Every piece stored, the digest (if any) checked, and the data file sealed. */
  get finished(): boolean {
    return this.#meta.finished;
  }

  get lastAccessedAt(): number {
    return this.#meta.lastAccessedAt;
  }

  /** The persistent cache metadata, for a dfcache task; undefined for an ordinary one. */
  get persistent(): PersistentCacheMeta | undefined {
    return this.#meta.persistent;
  }

  /** Makes the task persistent (or updates its metadata), durably. */
  async setPersistent(persistent: PersistentCacheMeta): Promise<void> {
    this.#meta = { ...this.#meta, persistent: { ...persistent } };
    await this.#saveMeta();
  }

  /** The origin validators the held pieces were fetched under; empty when unknown. */
  get validators(): OriginValidators {
    return this.#meta.validators ?? {};
  }

  /** Records the validators of the origin's object, before pieces of it are written, so they survive a crash with the pieces. */
  async setValidators(validators: OriginValidators): Promise<void> {
    this.#meta = { ...this.#meta, validators };
    await this.#saveMeta();
  }

  /**
   * Forgets every piece (the origin's object changed since they were
   * fetched): the journal is emptied, so none of them is served again or
   * survives a restart, and their bytes will be overwritten. Only for an
   * unfinished task, which no output links to.
   */
  async discardPieces(): Promise<void> {
    if (this.#meta.finished) throw daemonError(ErrorCode.storage, "internal", `task ${this.taskId} is finished; its pieces are not discarded`);
    await this.#syncing;
    try {
      await this.#journal!.truncate(0);
      await this.#journal!.datasync();
    } catch (err) {
      throw storageError(err, "cannot empty the piece journal");
    }
    this.#pieces.clear();
    this.#completedBytes = 0;
    this.#contentDigests.clear();
  }

  /** What the task tells peers, schedulers and local clients about its content. */
  info(): MessageInitShape<typeof TaskInfoSchema> {
    return {
      taskId: this.taskId,
      contentLength: BigInt(this.contentLength),
      pieceLength: BigInt(this.pieceLength),
      totalPieces: this.totalPieces,
      digest: this.digest,
    };
  }

  get totalPieces(): number {
    return pieceCountOf(this.#meta.contentLength, this.#meta.pieceLength);
  }

  get completedBytes(): number {
    return this.#completedBytes;
  }

  get pieceCount(): number {
    return this.#pieces.size;
  }

  get dataPath(): string {
    return join(this.dir, "data");
  }

  hasPiece(number: number): boolean {
    return this.#pieces.has(number);
  }

  piece(number: number): StoredPiece | undefined {
    return this.#pieces.get(number);
  }

  pieces(): StoredPiece[] {
    return [...this.#pieces.values()].sort((a, b) => a.number - b.number);
  }

  /** False when the piece was already there. */
  #addPiece(piece: StoredPiece): boolean {
    if (this.#pieces.has(piece.number)) return false;
    this.#pieces.set(piece.number, piece);
    this.#completedBytes += piece.length;
    return true;
  }

  /** True once the content length is known (it may be 0). */
  get lengthKnown(): boolean {
    return this.#meta.contentLength >= 0 && this.#meta.pieceLength > 0;
  }

  /** True after close(): the task left the store and its files may be gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Counts a reader in, synchronously, and returns the function that counts
   * it out. Undefined when the task already left the store (evicted or
   * deleted): its files may be gone, so the caller must not read them.
   */
  acquire(): (() => void) | undefined {
    if (this.#closed) return undefined;
    this.activeReaders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.activeReaders--;
      // In memory only: persistAccessTime() writes it out, so a busy upload path does not rewrite meta.json per piece.
      this.#meta = { ...this.#meta, lastAccessedAt: Math.max(this.#meta.lastAccessedAt, Date.now()) };
    };
  }

  /** Writes meta.json if the last access time changed since it was written. */
  async persistAccessTime(): Promise<void> {
    if (this.#meta.lastAccessedAt !== this.#savedAccessAt && !this.#closed) await this.#saveMeta();
  }

  async setLength(contentLength: number, pieceLength: number): Promise<void> {
    if (contentLength > this.#completedBytes) await this.#reserve?.(this, contentLength - this.#completedBytes);
    this.#meta = { ...this.#meta, contentLength, pieceLength };
    await this.#saveMeta();
    this.emit("info");
  }

  /**
   * Writes a verified piece at its offset; once it is synced and journaled
   * it is announced. Pieces written while a sync runs share the next one
   * (one fdatasync of the data and one of the journal per batch, not per
   * piece), so a piece is durable before anyone hears of it at a cost that
   * does not grow with the number of pieces in flight. False when the
   * piece was already stored (by another writer), so it is not counted twice.
   */
  async writePiece(piece: StoredPiece, bytes: Uint8Array | readonly Buffer[]): Promise<boolean> {
    if (this.#pieces.has(piece.number)) return false;
    if (this.#closed) throw daemonError(ErrorCode.taskNotFound, "aborted", `task ${this.taskId} left the store while piece ${piece.number} was written`);
    const chunks = bytes instanceof Uint8Array ? [bytes] : bytes;
    const length = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    if (length !== piece.length) throw daemonError(ErrorCode.storage, "internal", `piece ${piece.number} has ${length} bytes, expected ${piece.length}`);
    try {
      await writeAllAt(this.#data!, chunks, piece.offset);
    } catch (err) {
      throw storageError(err, `cannot store piece ${piece.number}`);
    }
    const committed = deferred<boolean>();
    this.#unsynced.push({ piece, committed });
    this.#syncing ??= this.#syncBatches();
    return committed.promise;
  }

  /** Syncs the data file, then journals and syncs every piece written before that sync began; repeats while more wait. */
  async #syncBatches(): Promise<void> {
    while (this.#unsynced.length > 0) {
      const batch = this.#unsynced;
      this.#unsynced = [];
      try {
        await this.#data!.datasync();
        await this.#journal!.appendFile(batch.map(({ piece }) => `${JSON.stringify(piece)}\n`).join(""));
        await this.#journal!.datasync();
      } catch (err) {
        for (const { piece, committed } of batch) committed.reject(storageError(err, `cannot store piece ${piece.number}`));
        continue;
      }
      for (const { piece, committed } of batch) {
        const added = this.#addPiece(piece);
        if (added) this.emit("piece", piece);
        committed.resolve(added);
      }
    }
    this.#syncing = undefined;
  }

  async markFinished(): Promise<void> {
    // Sealed before the task reads as finished: from that moment a caller may link an output to the file
    // (TaskManager.open hands out a finished task at once), and an edit through it must differ from the seal.
    // Nothing links to the file before now, so its bytes are the verified pieces as written.
    const identity = await this.#guard.prepare();
    if (identity) this.#guard.seal(identity);
    // The access time stays the caller's to record (touch(), or a reader's release): finishing is not a read.
    this.#meta = { ...this.#meta, finished: true };
    await this.#saveMeta();
    this.emit("finished");
  }

  /**
   * One fstat of the open data file: false when it changed since its pieces
   * were last known good (a re-verification is then started) or while one
   * runs. Costs nothing while the task is being filled.
   */
  checkUnchanged(): Promise<boolean> {
    return this.#guard.unchanged();
  }

  /**
   * If the data file changed since its pieces were last known good (an
   * output hard-linked to it was written, removed or linked again), re-reads
   * every piece against the journal; pieces that fail are dropped and the
   * task becomes unfinished, so the next request fetches them again. Shared
   * by concurrent callers.
   */
  async verifyIfChanged(): Promise<void> {
    try {
      await this.#guard.verifyIfChanged();
    } catch (err) {
      if (!this.#closed) throw storageError(err, "cannot re-verify the task's data");
    }
  }

  /**
   * Runs `place` with the data file's path to put an output in place (maybe
   * a hard link); false, without placing, when the data changed just before
   * and lost pieces, so the task must be fetched again first.
   */
  async placeData(place: (dataPath: string) => Promise<unknown>): Promise<boolean> {
    await this.verifyIfChanged();
    return this.#meta.finished && !this.#closed && (await this.#guard.placing(() => place(this.dataPath)));
  }

  async #reverify(): Promise<boolean> {
    const failed: StoredPiece[] = [];
    for (const piece of this.pieces()) if (!(await this.#intact(piece))) failed.push(piece);
    if (failed.length === 0) return true;
    // A digest hashed since the edit may be of the edited bytes.
    this.#contentDigests.clear();
    await this.#detach();
    for (const piece of failed) {
      this.#pieces.delete(piece.number);
      this.#completedBytes -= piece.length;
    }
    this.#meta = { ...this.#meta, finished: false };
    await this.#saveMeta();
    return false;
  }

  async #intact(piece: StoredPiece): Promise<boolean> {
    const bytes = Buffer.alloc(piece.length);
    const { bytesRead } = await this.#data!.read(bytes, 0, piece.length, piece.offset);
    return bytesRead === piece.length && pieceIntact(piece, bytes);
  }

  /** A finished file may be hard-linked from outputs, edited since: pieces fetched again go to a new inode (see detachDataFile). */
  async #detach(): Promise<void> {
    const old = this.#data;
    this.#data = await detachDataFile(this.dataPath);
    await old?.close();
  }

  async touch(): Promise<void> {
    this.#meta = { ...this.#meta, lastAccessedAt: Date.now() };
    await this.#saveMeta();
  }

  /** Writes meta.json; writes are queued so two never race on the temp file. */
  #saveMeta(): Promise<void> {
    const write = this.#metaWrites.then(() => this.#writeMeta());
    this.#metaWrites = write.catch(() => undefined);
    return write;
  }

  async #writeMeta(): Promise<void> {
    const path = join(this.dir, "meta.json");
    const tmp = `${path}.tmp`;
    const meta = this.#meta;
    try {
      await writeFile(tmp, JSON.stringify(meta));
      const handle = await open(tmp, "r");
      await handle.sync();
      await handle.close();
      await rename(tmp, path);
      this.#savedAccessAt = meta.lastAccessedAt;
    } catch (err) {
      throw storageError(err, "cannot write task metadata");
    }
  }

  /** Streams `length` bytes from `offset`; the caller must only ask for stored pieces. */
  readStream(offset: number, length: number): Readable {
    return createReadStream(this.dataPath, { start: offset, end: offset + length - 1, highWaterMark: 1024 * 1024 });
  }

  /**
   * The digest of the whole content ("sha256:<hex>"), hashed from the data
   * file once per algorithm while its pieces stay verified: a task deleted
   * (a digest mismatch) takes it along, and a re-verification that drops
   * pieces forgets it. Only meaningful once every piece is stored.
   */
  contentDigest(algorithm: DigestAlgorithm): Promise<string> {
    let pending = this.#contentDigests.get(algorithm);
    if (pending === undefined) {
      pending = hashFile(this.dataPath, algorithm);
      this.#contentDigests.set(algorithm, pending);
      pending.catch(() => this.#contentDigests.delete(algorithm));
    }
    return pending;
  }

  /**
   * Reads stored bytes at `position` into all of `buffer` (fewer only at the
   * end of the file); the caller holds the task (acquire) and asks only
   * for bytes of stored pieces.
   */
  async readAt(buffer: Buffer, position: number): Promise<number> {
    const data = this.#data;
    if (data === undefined) throw daemonError(ErrorCode.taskNotFound, "aborted", `task ${this.taskId} left the store`);
    let filled = 0;
    while (filled < buffer.byteLength) {
      const { bytesRead } = await data.read(buffer, filled, buffer.byteLength - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  }

  async readPiece(number: number): Promise<Buffer> {
    const piece = this.#pieces.get(number);
    if (!piece) throw daemonError(ErrorCode.pieceNotFound, "not_found", `piece ${number} is not stored`);
    const bytes = Buffer.alloc(piece.length);
    await this.#data!.read(bytes, 0, piece.length, piece.offset);
    return bytes;
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.emit("closed");
    }
    await this.#data?.close();
    await this.#journal?.close();
    this.#data = undefined;
    this.#journal = undefined;
  }
}

async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = createDigester(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest("hex")}`;
}

/** The one check of a stored piece's bytes against its journal entry, on load and on re-verification. */
function pieceIntact(piece: StoredPiece, bytes: Buffer): boolean {
  return typeof piece.sha256 === "string" && pieceDigestOf(bytes) === piece.sha256;
}

/** Writes every chunk, in order, from `position` on; writev may write less than asked. */
async function writeAllAt(file: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  let pending = chunks.filter((chunk) => chunk.byteLength > 0);
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const chunk of pending) {
      if (skip >= chunk.byteLength) skip -= chunk.byteLength;
      else {
        rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
        skip = 0;
      }
    }
    pending = rest;
  }
}

export function storageError(err: unknown, what: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") return daemonError(ErrorCode.diskFull, "resource_exhausted", `${what}: the disk is full`, err);
  return daemonError(ErrorCode.storage, "internal", `${what}: ${code ?? String(err)}`, err);
}
