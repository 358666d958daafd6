import { ErrorCode, LacewingError } from "@lacewing/common";

/** The file in the output directory that remembers what `dfget -r` wrote there. */
export const STATE_FILE = ".lacewing-dir.json";

/** Longest key accepted (PATH_MAX is 4096 bytes; the directory's own path comes on top). */
const MAX_KEY_BYTES = 1024;
/** NAME_MAX: a longer segment cannot be a file name, and the daemon's temp name adds to it. */
const MAX_SEGMENT_BYTES = 200;
// C0 controls and DEL: NUL truncates paths, the others rewrite a terminal when a key is printed.
const CONTROL = /[\u0000-\u001f\u007f]/;
/** `.<name>.lacewing-…`: names the daemon gives temp files while it places an output, and removes when stale. */
const DAEMON_TEMP = /^\..*\.lacewing-/;

/**
 * Why a listed key cannot be written below the output directory, or
 * undefined when it can. A key is a relative POSIX path that is already in
 * normal form: no absolute path, no `.`/`..`/empty segment, no backslash (a
 * separator somewhere), no NUL or control character, not the state file and
 * not a name of the daemon's temp files. Normal form means the key is its
 * own output path below the directory: nothing "normalises" a hostile key
 * into an innocent-looking one.
 */
export function keyProblemOf(key: string): string | undefined {
  if (key === "") return "it is empty";
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `it is longer than ${MAX_KEY_BYTES} bytes`;
  if (CONTROL.test(key)) return "it contains a NUL or control character";
  if (key.includes("\\")) return "it contains a backslash";
  if (key.startsWith("/")) return "it is an absolute path";
  const segments = key.split("/");
  for (const segment of segments) {
    if (segment === "") return "it has an empty path segment";
    if (segment === "." || segment === "..") return `it has a "${segment}" segment`;
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
    if (DAEMON_TEMP.test(segment)) return "a path segment has the form of a dfdaemon temp file";
  }
  if (segments[0] === STATE_FILE || segments[0]?.startsWith(`${STATE_FILE}.`)) return `it would overwrite dfget's state file ${STATE_FILE}`;
  return undefined;
}

/** Throws LW_ERR_UNSAFE_KEY naming the key when it cannot be written below the directory. */
export function checkKey(key: string): void {
  const problem = keyProblemOf(key);
  if (problem !== undefined) throw unsafeKey(key, problem);
}

export function unsafeKey(key: string, problem: string): LacewingError {
  return new LacewingError(ErrorCode.unsafeKey, "failed_precondition", `refusing listed file ${JSON.stringify(key)}: ${problem}`);
}
