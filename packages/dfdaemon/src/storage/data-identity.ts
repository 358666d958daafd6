import { constants } from "node:fs";
import { chmod, copyFile, open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDirectory } from "./fsync-directory.js";

/**
 * Why a finished task's data file needs guarding: outputs are hard links to
 * it (zero-copy placement, see download/place-output.ts), so whoever can
 * write an output can write the bytes this node serves to the next dfget, to
 * its peers and to containerd. The file is made read-only (0444) once
 * finished, which stops accidental writes by anyone but root and the
 * daemon's own user; for those, every change is detected instead.
 *
 * The alternative, copying every output, keeps the cache unreachable by
 * construction but writes every byte twice on filesystems without reflinks
 * (ext4): a 4 GiB download would cost a second 4 GiB write and fsync, which
 * rules out dfget at close to curl's speed. Detection costs one fstat per
 * served piece and a re-read of the task after a suspect change.
 */

/**
 * What one fstat tells about a file's bytes without reading them. A write
 * moves mtime and ctime; mtime can be set back from user space (utimes),
 * ctime cannot. A new or removed hard link and a chmod move ctime too, so a
 * change is a suspicion to check, not proof of an edit.
 */
export interface DataIdentity {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Mode of a finished task's data file, and so of every output hard-linked to it. */
export const FINISHED_DATA_MODE = 0o444;

export async function identityOf(file: FileHandle): Promise<DataIdentity> {
  const stats = await file.stat({ bigint: true });
  return { ino: stats.ino, size: stats.size, mtimeNs: stats.mtimeNs, ctimeNs: stats.ctimeNs };
}

export function sameIdentity(a: DataIdentity, b: DataIdentity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** True when only ctime differs: what linking the file does (and also a write whose mtime was set back, hence only trusted right around a link). */
export function onlyCtimeMoved(before: DataIdentity, after: DataIdentity): boolean {
  return before.ino === after.ino && before.size === after.size && before.mtimeNs === after.mtimeNs;
}

export interface DataGuardOptions {
  /** The task's open data file; undefined once the task is closed. */
  file: () => FileHandle | undefined;
  /**
   * Re-reads every piece against its journaled checksum and drops those
   * that fail (the task becomes unfinished); true when none failed.
   */
  verify: () => Promise<boolean>;
}

/**
 * Notices when a finished task's data file changed behind the daemon's back.
 * `seal` records the identity of bytes known to be good (written by the
 * daemon, or just re-verified); `unchanged` compares it with one fstat of the
 * open handle; `verifyIfChanged` re-verifies the pieces after a change, once
 * for all concurrent callers, and records the identity anew if they all still
 * match. An unsealed file (a task still being filled) is the daemon's alone:
 * nothing links to it before it is finished.
 */
export class DataGuard {
  readonly #options: DataGuardOptions;
  #sealed: DataIdentity | undefined;
  #verifying: Promise<void> | undefined;
  #placements: Promise<unknown> = Promise.resolve();

  constructor(options: DataGuardOptions) {
    this.#options = options;
  }

  get sealed(): boolean {
    return this.#sealed !== undefined;
  }

  /**
   * Makes the file read-only and returns its identity, to be sealed once
   * the pieces are known good: taken before they are read, so a change made
   * while they are checked differs from it and is found by the next check.
   */
  async prepare(): Promise<DataIdentity | undefined> {
    const file = this.#options.file();
    if (!file) return undefined;
    // Also undoes a chmod that came with an edit; chmod moves ctime, so it goes before the identity is taken.
    await file.chmod(FINISHED_DATA_MODE);
    return identityOf(file);
  }

  seal(identity: DataIdentity): void {
    this.#sealed = identity;
  }

  /** One fstat: false when the file changed since it was sealed (a re-verification is then started) or is being re-verified. */
  async unchanged(): Promise<boolean> {
    if (this.#verifying) return false;
    const sealed = this.#sealed;
    const file = this.#options.file();
    if (!sealed || !file) return true;
    try {
      if (sameIdentity(await identityOf(file), sealed)) return true;
    } catch {
      return false;
    }
    // A failure is not lost: the identity stays as it was, so the next check (or a download, which waits and reports) tries again.
    this.verifyIfChanged().catch(() => undefined);
    return false;
  }

  /** Re-verifies the pieces if the file changed since it was sealed; shared by concurrent callers. */
  verifyIfChanged(): Promise<void> {
    this.#verifying ??= this.#verify().finally(() => (this.#verifying = undefined));
    return this.#verifying;
  }

  async #verify(): Promise<void> {
    const sealed = this.#sealed;
    const file = this.#options.file();
    if (!sealed || !file || sameIdentity(await identityOf(file), sealed)) return;
    const identity = await this.prepare();
    if (!(await this.#options.verify())) this.#sealed = undefined;
    else if (identity && this.#sealed === sealed) this.#sealed = identity;
  }

  /**
   * Runs `place` (which may hard-link the file, moving its ctime), one
   * placement at a time per task, and adopts the new ctime only when the
   * file was unchanged just before and nothing but ctime moved. Resolves
   * false, without placing, when the file changed since it was sealed: the
   * caller re-verifies and tries again.
   */
  placing(place: () => Promise<unknown>): Promise<boolean> {
    const run = this.#placements.then(() => this.#place(place));
    this.#placements = run.catch(() => undefined);
    return run;
  }

  async #place(place: () => Promise<unknown>): Promise<boolean> {
    const sealed = this.#sealed;
    const file = this.#options.file();
    if (!sealed || !file) {
      await place();
      return true;
    }
    const before = await identityOf(file);
    if (this.#verifying || !sameIdentity(before, sealed)) return false;
    await place();
    // The window an edit could hide in is these two fstats and the link between them.
    const after = await identityOf(file);
    if (this.#sealed === sealed && !this.#verifying && onlyCtimeMoved(before, after)) this.#sealed = after;
    return true;
  }
}

/**
 * Moves the data file at `path` to a new inode holding the same bytes and
 * returns it open for writing. Pieces fetched again after a change must not
 * be written into the old inode: outputs hard-linked to it belong to their
 * owners now, edits included.
 */
export async function detachDataFile(path: string): Promise<FileHandle> {
  const temp = `${path}.detached`;
  // A leftover of a crash in an earlier detach; the task directory is the daemon's own.
  await rm(temp, { force: true });
  await copyFile(path, temp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  // copyFile kept the finished file's 0444; this one is written again.
  await chmod(temp, 0o644);
  const file = await open(temp, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    await file.sync();
    await rename(temp, path);
    await fsyncDirectory(dirname(path));
  } catch (err) {
    await file.close();
    throw err;
  }
  return file;
}
