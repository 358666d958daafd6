import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { appendFile, mkdtemp, open, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createUnixClient, dfdaemonv1 } from "@lacewing/api";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { fetchPieceWith, outcomeOf, uploadGrant, type PieceAnswer } from "../helpers/peer.js";
import { BIN, runCommand, startDaemon } from "../helpers/processes.js";
import { waitUntil } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

interface JournaledPiece {
  number: number;
  offset: number;
  length: number;
}

async function journal(taskDir: string): Promise<JournaledPiece[]> {
  const text = await readFile(join(taskDir, "pieces.log"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line.endsWith("}"))
    .map((line) => JSON.parse(line) as JournaledPiece);
}

describe("restart after kill -9 in the middle of a download", () => {
  let dir: string;
  let origin: TestOrigin;
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  // 16 pieces of 4 MiB.
  const big = randomBytesOf(64 * MiB, 11);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-restart-"));
    origin = new TestOrigin({ "/big.bin": big });
    await origin.start();
  });

  after(async () => {
    await daemon?.stop();
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("resumes with only the missing pieces from the origin and never serves a torn piece", async () => {
    // 4 pieces at a time at 16 MiB/s: a wave of 4 pieces lands about every second.
    origin.bytesPerSecond = 16 * MiB;
    daemon = await startDaemon(dir, ["--origin-concurrency", "4"]);
    // No reconnect: this dfget is to fail with its daemon (daemon-restart.spec.ts has the one that waits for it).
    const first = runCommand(BIN.dfget, [
      origin.url("/big.bin"),
      "-O",
      join(dir, "first.bin"),
      "--socket",
      daemon.socket,
      "--no-progress",
      "--reconnect-timeout",
      "0",
    ]);
    const tasksDir = join(dir, "data", "tasks");
    let taskDir = "";
    // Polled often: the kill must land after a few pieces and well before the last.
    await waitUntil(
      "some pieces were journaled",
      async () => {
        const [name] = await readdir(tasksDir).catch(() => []);
        if (name === undefined || (await journal(join(tasksDir, name))).length < 4) return false;
        taskDir = join(tasksDir, name);
        return true;
      },
      { timeoutMs: 12_000, intervalMs: 20 },
    );
    await daemon.stop("SIGKILL");
    const killed = await first;
    assert.notEqual(killed.code, 0, "the first dfget lost its daemon");
    const taskId = taskDir.slice(taskDir.lastIndexOf("/") + 1);

    const journaled = await journal(taskDir);
    assert.ok(journaled.length < 16, "killed before the end");
    // A crash that tore a journaled piece: its bytes no longer match its SHA-256, and a half-written journal line.
    const torn = journaled[0]!;
    const data = await open(join(taskDir, "data"), "r+");
    await data.write(Buffer.from([big[torn.offset + 100]! ^ 0xff]), 0, 1, torn.offset + 100);
    await data.close();
    await appendFile(join(taskDir, "pieces.log"), '{"number":15,"offset":62914');
    const kept = journaled.filter((p) => p.number !== torn.number);
    const keptBytes = kept.reduce((sum, p) => sum + p.length, 0);

    daemon = await startDaemon(dir);
    const client = createUnixClient(dfdaemonv1.DfdaemonDownload, daemon.socket);
    try {
      const stat = await client.statTask({ taskId });
      assert.equal(stat.finished, false);
      assert.equal(stat.completedPieces, kept.length, "verified pieces reloaded, the torn one dropped");
    } finally {
      client.close();
    }
    assert.equal(outcomeOf(await fetchPieceWith(daemon.ports.upload, taskId, kept[0]!.number, "no-grant")), "unauthorized", "no piece without a grant");
    const grant = await uploadGrant(daemon.ports.peer, taskId);
    const piece = (n: number): Promise<PieceAnswer> => fetchPieceWith(daemon!.ports.upload, taskId, n, grant.token);
    assert.equal(outcomeOf(await piece(torn.number)), "notFound", "the torn piece is not served to peers");
    const missing = [...Array(16).keys()].find((n) => !journaled.some((p) => p.number === n))!;
    assert.equal(outcomeOf(await piece(missing)), "notFound", "a piece in flight at the crash is not served");
    const good = kept[0]!;
    const served = await piece(good.number);
    assert.ok("piece" in served && served.piece.equals(big.subarray(good.offset, good.offset + good.length)), "a verified piece is served intact");
    grant.close();

    origin.bytesPerSecond = 0;
    origin.bytesSent = 0;
    const out = join(dir, "second.bin");
    const second = await runCommand(BIN.dfget, [origin.url("/big.bin"), "-O", out, "--socket", daemon.socket, "--no-progress"]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(sha256(await readFile(out)), sha256(big));
    assert.equal(origin.bytesSent, big.byteLength - keptBytes + 1, "the probe byte plus exactly the pieces not kept");
  });
});
