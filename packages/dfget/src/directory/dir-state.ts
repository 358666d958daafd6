import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { lstat, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { STATE_FILE } from "./output-key.js";

/** What `dfget -r` remembers of one file it wrote: the listed version, and the file as it left it. */
export interface WrittenFile {
  version: string;
  size: number;
  mtimeMs: number;
}

/** `.lacewing-dir.json`: key → what was written. Keys of earlier runs are kept, so a narrower --include does not forget them. */
export interface DirState {
  files: Map<string, WrittenFile>;
}

const FORMAT = 1;
/** A state file larger than this is not ours (or not sane): it is ignored and everything is fetched again. */
const MAX_STATE_BYTES = 64 * 1024 * 1024;

/**
 * Reads the state file of `dir`. A missing, unreadable, oversized or
 * malformed file, or a symlink in its place, reads as empty: the state only
 * ever saves work, so doubt costs a download, never a wrong skip.
 */
export async function readDirState(dir: string): Promise<DirState> {
  const empty: DirState = { files: new Map() };
  let handle;
  try {
    handle = await open(join(dir, STATE_FILE), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return empty;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > MAX_STATE_BYTES) return empty;
    return parseDirState(await handle.readFile("utf8")) ?? empty;
  } catch {
    return empty;
  } finally {
    await handle.close();
  }
}

/** The state in a state file's text, or undefined when it is not one; entries of the wrong shape are dropped one by one. */
export function parseDirState(text: string): DirState | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const { format, files } = raw as { format?: unknown; files?: unknown };
  if (format !== FORMAT || typeof files !== "object" || files === null || Array.isArray(files)) return undefined;
  const state: DirState = { files: new Map() };
  for (const [key, entry] of Object.entries(files)) {
    if (typeof entry !== "object" || entry === null) continue;
    const { version, size, mtimeMs } = entry as Record<string, unknown>;
    if (typeof version !== "string" || !isNonNegative(size) || !isNonNegative(mtimeMs)) continue;
    state.files.set(key, { version, size, mtimeMs });
  }
  return state;
}

function isNonNegative(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

export function serializeDirState(state: DirState): string {
  const files = Object.fromEntries([...state.files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ format: FORMAT, files }, null, 1)}\n`;
}

/**
 * Replaces the state file atomically: a temp file with a random name,
 * created exclusively (so a planted symlink or file there fails the create
 * instead of being written through), fsynced, renamed over the state file
 * (which replaces a symlink rather than following it).
 */
export async function writeDirState(dir: string, state: DirState): Promise<void> {
  const target = join(dir, STATE_FILE);
  const temp = join(dir, `${STATE_FILE}.${randomBytes(16).toString("hex")}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  let renamed = false;
  try {
    await handle.writeFile(serializeDirState(state));
    await handle.sync();
    await handle.close();
    await rename(temp, target);
    renamed = true;
  } finally {
    await handle.close().catch(() => undefined);
    if (!renamed) await unlink(temp).catch(() => undefined);
  }
}

/** What to remember of a file just written, from its lstat. */
export function writtenFileOf(version: string, stats: Stats): WrittenFile {
  return { version, size: stats.size, mtimeMs: stats.mtimeMs };
}

/**
 * True when the file at `path` is still what a run wrote for `version`: a
 * regular file (a symlink never is), of the recorded size and mtime, and the
 * listing still names the recorded version. Anything else is fetched again.
 */
export async function isUnchanged(path: string, version: string, written: WrittenFile | undefined): Promise<boolean> {
  if (written === undefined || written.version !== version) return false;
  const stats = await lstat(path).catch(() => undefined);
  return stats !== undefined && stats.isFile() && stats.size === written.size && stats.mtimeMs === written.mtimeMs;
}

/**
 * Serialises state writes: `save()` after each finished file writes the
 * current state once the write in flight (if any) is done, and saves asked
 * for meanwhile coalesce into one, so many files finishing at once cost one
 * or two writes, not one each.
 */
export class DirStateWriter {
  readonly #dir: string;
  readonly #state: DirState;
  #running: Promise<void> | undefined;
  #again = false;
  #error: unknown;

  constructor(dir: string, state: DirState) {
    this.#dir = dir;
    this.#state = state;
  }

  get state(): DirState {
    return this.#state;
  }

  record(key: string, written: WrittenFile): void {
    this.#state.files.set(key, written);
    this.save();
  }

  save(): void {
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      try {
        await writeDirState(this.#dir, this.#state);
      } catch (err) {
        this.#error = err;
      }
    } while (this.#again);
    this.#running = undefined;
  }

  /** Waits for the last write; rejects with the last write error, if any. */
  async flush(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
    if (this.#error !== undefined) throw this.#error;
  }
}
