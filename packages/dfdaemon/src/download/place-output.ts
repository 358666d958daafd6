import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, link, lstat, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ErrorCode, errorMessage, isLacewingError } from "@lacewing/common";
import { daemonError } from "../errors.js";
import { fsyncDirectory } from "../storage/fsync-directory.js";

/**
 * How a finished task is put at a caller's output path.
 *
 * The output directory belongs to the caller, and whoever else can write to
 * it may have planted symlinks there, while the daemon usually runs as root.
 * So nothing here opens, creates or removes a path in that directory in a
 * way that follows a symlink: the temporary file gets an unpredictable name
 * and is created exclusively (`link(2)` and `copyFile` with COPYFILE_EXCL
 * both fail with EEXIST on any existing entry, a dangling symlink included),
 * it is reopened with O_NOFOLLOW only to fsync it, and `rename(2)` replaces
 * whatever entry is at the output (a symlink there is replaced, its target
 * untouched). The temp file is synced before the rename and the directory
 * after it, so a crash leaves the old output or the new one, never a torn one.
 */

/** The output shares the data file's inode (zero-copy), or is a copy of it (a reflink where the filesystem can). */
export type Placement = "link" | "copy";

export interface PlaceOutputOptions {
  /** Leftover temp files of this output whose ctime is older than this are removed first. */
  staleTempMs: number;
  /** The random part of a temp name; crypto-random unless a test forces collisions. */
  randomPart?: () => string;
  now?: () => number;
}

/** How many fresh names are tried when a temp name is taken; with 128 random bits a taken name means someone planted it. */
const TEMP_ATTEMPTS = 8;
const RANDOM_PART = /^[0-9a-f]{32}\.tmp$/;
/** `.<name>.lacewing-<pid>-<ms>`, the predictable names of earlier versions; their leftovers are cleaned too. */
const LEGACY_PART = /^\d+-\d+$/;
/** Where a hard link cannot be made but a copy can: another filesystem, one without hard links, or a file at its link limit. */
const NO_HARD_LINK = new Set(["EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/** Temp paths this process is creating right now; never taken for a crash's leftovers, whatever their age. */
const inFlight = new Set<string>();

/**
 * Puts the file at `source` (a finished task's data file) at `output`
 * atomically, first removing stale temp files an earlier run of the same
 * output left behind. Rejects with LW_ERR_OUTPUT.
 */
export async function placeOutput(source: string, output: string, options: PlaceOutputOptions): Promise<Placement> {
  await removeStaleTemps(output, options.staleTempMs, options.now?.() ?? Date.now()).catch(() => undefined);
  let temp: { path: string; how: Placement } | undefined;
  let renamed = false;
  try {
    temp = await createTemp(source, output, options.randomPart ?? randomPart);
    await fsyncFile(temp.path);
    await rename(temp.path, output);
    renamed = true;
    await fsyncDirectory(dirname(output));
    return temp.how;
  } catch (err) {
    // unlink(2) removes the entry itself, even if someone swapped a symlink in since.
    if (temp && !renamed) await unlink(temp.path).catch(() => undefined);
    throw isLacewingError(err) ? err : outputError(err, output);
  } finally {
    if (temp) inFlight.delete(temp.path);
  }
}

/** The temp name beside `output` for one random part. */
export function tempPathOf(output: string, random: string): string {
  return join(dirname(output), `${tempPrefixOf(basename(output))}${random}.tmp`);
}

/** True when `name` (an entry of the output's directory) is a temp file of `output`, this version's or an earlier one's. */
export function isTempOf(output: string, name: string): boolean {
  const prefix = tempPrefixOf(basename(output));
  if (!name.startsWith(prefix)) return false;
  const rest = name.slice(prefix.length);
  return RANDOM_PART.test(rest) || LEGACY_PART.test(rest);
}

/**
 * Removes temp files of `output` whose ctime is older than `olderThanMs`
 * (ctime, because a hard-linked temp carries the data file's old mtime and
 * mtime can be set at will; ctime is set by the kernel on every link and
 * write). Only regular files and symlinks matching the temp pattern are
 * touched, and a symlink is unlinked, never followed. Returns the names
 * removed.
 */
export async function removeStaleTemps(output: string, olderThanMs: number, now: number): Promise<string[]> {
  const dir = dirname(output);
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (!isTempOf(output, name) || inFlight.has(path)) continue;
    const stats = await lstat(path).catch(() => undefined);
    if (!stats || !(stats.isFile() || stats.isSymbolicLink()) || now - stats.ctimeMs < olderThanMs) continue;
    try {
      await unlink(path);
      removed.push(name);
    } catch {
      // Gone already, or not ours to remove: either way nothing to do.
    }
  }
  return removed;
}

/**
 * Creates a temp file holding `source`'s bytes under a fresh random name,
 * exclusively: a hard link where it can, else a copy (COPYFILE_FICLONE
 * reflinks where the filesystem supports it and copies otherwise).
 */
async function createTemp(source: string, output: string, random: () => string): Promise<{ path: string; how: Placement }> {
  try {
    return { path: await exclusively(output, random, (path) => link(source, path)), how: "link" };
  } catch (err) {
    if (!NO_HARD_LINK.has(codeOf(err))) throw err;
  }
  return { path: await exclusively(output, random, (path) => copyFile(source, path, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE)), how: "copy" };
}

/** Runs `create` (which must fail with EEXIST on any existing entry) on fresh temp names until one is free. */
async function exclusively(output: string, random: () => string, create: (path: string) => Promise<void>): Promise<string> {
  for (let attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
    const path = tempPathOf(output, random());
    inFlight.add(path);
    try {
      await create(path);
      return path;
    } catch (err) {
      inFlight.delete(path);
      if (codeOf(err) !== "EEXIST") throw err;
    }
  }
  throw daemonError(ErrorCode.output, "permission_denied", `cannot write output ${output}: ${TEMP_ATTEMPTS} fresh temporary names beside it were all taken`);
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** NAME_MAX is 255 bytes: a long output name is cut (the same way every time, so leftovers are still found). */
function tempPrefixOf(base: string): string {
  const name = Buffer.byteLength(base) > 180 ? Buffer.from(base).subarray(0, 180).toString("utf8") : base;
  return `.${name}.lacewing-`;
}

function randomPart(): string {
  return randomBytes(16).toString("hex");
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? "";
}

function outputError(err: unknown, output: string): Error {
  const code = codeOf(err) || errorMessage(err);
  return daemonError(ErrorCode.output, code === "ENOSPC" ? "resource_exhausted" : "permission_denied", `cannot write output ${output}: ${code}`, err);
}
