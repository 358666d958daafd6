import { execFile } from "node:child_process";
import { chmod, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * What someone who can write an output does to it: changes bytes in place
 * (same size), then sets its mtime back exactly, to the nanosecond
 * (`touch -r`, utimensat), so only ctime tells. Not being root, they would
 * first need to own the file and chmod it, which moves ctime anyway.
 */
export async function editInPlace(path: string, offset: number, bytes: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "lacewing-edit-"));
  try {
    const reference = join(dir, "mtime");
    await run("touch", ["-r", path, reference]);
    if (process.getuid?.() !== 0) await chmod(path, 0o644);
    const file = await open(path, "r+");
    try {
      await file.write(Buffer.from(bytes), 0, Buffer.byteLength(bytes), offset);
    } finally {
      await file.close();
    }
    await run("touch", ["-m", "-r", reference, path]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
