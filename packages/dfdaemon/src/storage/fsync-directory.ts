import { constants } from "node:fs";
import { open } from "node:fs/promises";

/**
 * Makes a rename or link in `dir` durable: until the directory itself is
 * synced, a crash may forget the new entry even though the file's bytes are
 * on disk.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems (network and FUSE ones) cannot sync a directory: nothing more can be done there.
    if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
  } finally {
    await handle.close();
  }
}
