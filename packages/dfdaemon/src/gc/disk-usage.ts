import { statfs } from "node:fs/promises";

/** Bytes of the filesystem holding a directory. */
export interface DiskUsage {
  size: number;
  used: number;
  /** What an unprivileged writer can still use (statfs bavail). */
  available: number;
}

export async function diskUsageOf(dir: string): Promise<DiskUsage> {
  const fs = await statfs(dir);
  return { size: fs.blocks * fs.bsize, used: (fs.blocks - fs.bfree) * fs.bsize, available: fs.bavail * fs.bsize };
}
