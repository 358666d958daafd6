import { ErrorCode, LacewingError, redactUrl } from "@lacewing/common";
import type { ListFiles, RemoteFile } from "@lacewing/sources";
import { checkKey, unsafeKey } from "./output-key.js";
import type { KeyMatcher } from "./glob.js";

export interface ListDirectoryOptions {
  /** Keys kept (include/exclude already combined). */
  filter: KeyMatcher;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/**
 * Lists `rootUrl` to the end and returns the files to consider, in listing
 * order: zero-byte "directory marker" keys ending in `/` (what S3 consoles
 * create for folders) are skipped, the filter is applied, and every kept
 * key is checked before anything is downloaded, so a hostile listing fails
 * the run with nothing written. A key listed twice, or both as a file and
 * as a directory of other files, is refused too: one of them would
 * silently overwrite or break the other. A listing with no file at all
 * (a mistyped prefix looks just like an empty one) fails with
 * LW_ERR_OBJECT_NOT_FOUND; filters that keep none of the files do not.
 */
export async function listDirectory(list: ListFiles, rootUrl: string, options: ListDirectoryOptions): Promise<RemoteFile[]> {
  const files: RemoteFile[] = [];
  let listed = 0;
  for await (const file of list(rootUrl, { env: options.env, ...(options.signal === undefined ? {} : { signal: options.signal }) })) {
    listed++;
    if (file.key.endsWith("/") && file.size === 0) {
      // Still checked: a marker named "../" is as hostile as a file named so.
      if (file.key !== "/") checkKey(file.key.slice(0, -1));
      continue;
    }
    if (!options.filter(file.key)) continue;
    checkKey(file.key);
    files.push(file);
  }
  if (listed === 0) throw new LacewingError(ErrorCode.objectNotFound, "not_found", `nothing to download: no file below ${redactUrl(rootUrl)}`);
  const keys = new Set<string>();
  const dirs = new Set<string>();
  for (const { key } of files) {
    if (keys.has(key)) throw unsafeKey(key, "it is listed twice");
    keys.add(key);
    const segments = key.split("/");
    for (let i = 1; i < segments.length; i++) dirs.add(segments.slice(0, i).join("/"));
  }
  for (const key of keys) if (dirs.has(key)) throw unsafeKey(key, "it is listed both as a file and as a directory of other files");
  return files;
}
