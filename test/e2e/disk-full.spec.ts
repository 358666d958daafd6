import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { BIN, runCommand, startDaemon } from "../helpers/processes.js";
import { skipUnlessAvailable } from "../helpers/requirements.js";

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/** Runs a system command asynchronously (this process hosts an HTTP origin). */
function system(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim()}`))));
  });
}

interface DfgetJson {
  ok: boolean;
  error?: { code: string; message: string };
}

const skip = await skipUnlessAvailable("disk-full e2e", { root: true, linux: true, commands: ["mount", "umount"] });

describe("disk full: the data directory on a 32 MiB tmpfs", { skip }, () => {
  let dir: string;
  let dataDir: string;
  let mounted = false;
  let origin: TestOrigin;
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  const big = randomBytesOf(48 * MiB, 21);
  const small = randomBytesOf(4 * MiB + 17, 22);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-diskfull-"));
    dataDir = join(dir, "data");
    await mkdir(dataDir);
    await system("mount", ["-t", "tmpfs", "-o", "size=32m", "tmpfs", dataDir]);
    mounted = true;
    origin = new TestOrigin({ "/big.bin": big, "/unknown-length.bin": big, "/small.bin": small });
    await origin.start();
    daemon = await startDaemon(dir);
  });

  after(async () => {
    await daemon?.stop();
    await origin?.close();
    if (mounted) await system("umount", [dataDir]);
    await rm(dir, { recursive: true, force: true });
  });

  const dfget = (path: string) =>
    runCommand(BIN.dfget, [origin.url(path), "-O", join(dir, `${path.slice(1)}.out`), "--socket", daemon!.socket, "--no-progress", "--json"]);
  const tasks = (): Promise<string[]> => readdir(join(dataDir, "tasks"));

  it("a task of known length that cannot fit fails before its bytes are fetched", async () => {
    origin.bytesSent = 0;
    const r = await dfget("/big.bin");
    assert.equal(r.code, 1, r.stderr);
    const result = JSON.parse(r.stdout) as DfgetJson;
    assert.equal(result.error?.code, "LW_ERR_DISK_FULL");
    assert.match(result.error?.message ?? "", /the disk is full/);
    assert.ok(origin.bytesSent <= 1, `only the probe byte was fetched, not ${origin.bytesSent}`);
    assert.deepEqual(await tasks(), []);
  });

  it("a task of unknown length that fills the disk fails with a clear error and its partial data is removed", async () => {
    origin.faults = { noLength: true };
    const r = await dfget("/unknown-length.bin");
    origin.faults = {};
    assert.equal(r.code, 1, r.stderr);
    const result = JSON.parse(r.stdout) as DfgetJson;
    assert.equal(result.error?.code, "LW_ERR_DISK_FULL");
    assert.match(result.error?.message ?? "", /the disk is full/);
    assert.deepEqual(await tasks(), [], "the partial task is gone");
    const fs = await statfs(dataDir);
    assert.ok((fs.blocks - fs.bfree) * fs.bsize < MiB, "its bytes were freed");
  });

  it("the daemon keeps working: a download that fits succeeds afterwards", async () => {
    const r = await dfget("/small.bin");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(await readFile(join(dir, "small.bin.out"))), sha256(small));
  });
});
