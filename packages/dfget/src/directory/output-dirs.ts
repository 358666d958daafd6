import { lstat, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode, LacewingError } from "@lacewing/common";

/**
 * Creates the directories of `key` below `root` one segment at a time and
 * returns the output path. No step follows a symlink below `root`: each
 * segment is created with a plain mkdir (which never follows a symlink
 * at its own name) and then lstat-ed, and a segment that is a symlink or
 * not a directory fails the file, so a link planted inside the output
 * directory (`DIR/a -> /etc`) cannot send a listed `a/passwd` elsewhere.
 * `root` itself is the user's choice and may be a symlink. The key must
 * have passed checkKey. Done right before each file's download, so the
 * check is as fresh as dfget can make it; the daemon then places the file
 * with an exclusive temp name and a rename, which do not follow a symlink
 * at the output itself.
 */
export async function prepareOutputPath(root: string, key: string): Promise<string> {
  const segments = key.split("/");
  let dir = root;
  for (const segment of segments.slice(0, -1)) {
    dir = join(dir, segment);
    await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw outputError(key, `cannot create directory ${dir} (${err.code ?? err.message})`);
    });
    const stats = await lstat(dir).catch(() => undefined);
    if (stats === undefined) throw outputError(key, `directory ${dir} vanished while it was being created`);
    if (stats.isSymbolicLink()) throw outputError(key, `${dir} is a symlink; refusing to write through it`);
    if (!stats.isDirectory()) throw outputError(key, `${dir} is not a directory`);
  }
  const output = join(root, ...segments);
  const existing = await lstat(output).catch(() => undefined);
  if (existing?.isDirectory() === true) throw outputError(key, `${output} is a directory`);
  return output;
}

function outputError(key: string, message: string): LacewingError {
  return new LacewingError(ErrorCode.output, "permission_denied", `${key}: ${message}`);
}
