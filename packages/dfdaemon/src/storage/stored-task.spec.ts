import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pieceDigestOf } from "@lacewing/common";
import { StoredTask, type TaskMeta } from "./stored-task.js";
import { taskMeta } from "../testing/fixtures.js";

function meta(): TaskMeta {
  return taskMeta({ taskId: "t1", url: "http://o/f", contentLength: 12, pieceLength: 4, createdAt: 1, lastAccessedAt: 1 });
}

describe("StoredTask", () => {
  const dirs: string[] = [];
  after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  const newDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), "lacewing-store-"));
    dirs.push(dir);
    return dir;
  };

  it("keeps verified pieces across a reload and announces each piece once", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    const seen: number[] = [];
    task.on("piece", (p) => seen.push(p.number));
    const bytes = Buffer.from("abcd");
    await task.writePiece({ number: 1, offset: 4, length: 4, sha256: pieceDigestOf(bytes) }, bytes);
    await task.writePiece({ number: 1, offset: 4, length: 4, sha256: pieceDigestOf(bytes) }, bytes);
    await task.close();
    const loaded = await StoredTask.load(dir);
    assert.deepEqual(seen, [1]);
    assert.equal(loaded.hasPiece(1), true);
    assert.equal(loaded.hasPiece(0), false);
    assert.deepEqual(await loaded.readPiece(1), bytes);
    await loaded.close();
  });

  it("keeps the origin's validators across a reload, and discarded pieces stay gone after one", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    await task.setValidators({ etag: '"v1"', lastModified: "Thu, 01 Jan 2026 00:00:00 GMT" });
    const bytes = Buffer.from("abcd");
    await task.writePiece({ number: 0, offset: 0, length: 4, sha256: pieceDigestOf(bytes) }, bytes);
    await task.close();
    const loaded = await StoredTask.load(dir);
    assert.deepEqual(loaded.validators, { etag: '"v1"', lastModified: "Thu, 01 Jan 2026 00:00:00 GMT" });
    assert.equal(loaded.pieceCount, 1);
    await loaded.discardPieces();
    assert.equal(loaded.pieceCount, 0);
    assert.equal(loaded.completedBytes, 0);
    const other = Buffer.from("efgh");
    await loaded.writePiece({ number: 1, offset: 4, length: 4, sha256: pieceDigestOf(other) }, other);
    await loaded.close();
    const again = await StoredTask.load(dir);
    assert.deepEqual(
      again.pieces().map((p) => p.number),
      [1],
      "only the piece written after the discard",
    );
    await again.close();
  });

  it("drops a journaled piece whose bytes were torn by a crash", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    const bytes = Buffer.from("wxyz");
    await task.writePiece({ number: 2, offset: 8, length: 4, sha256: pieceDigestOf(bytes) }, bytes);
    await task.close();
    // Simulate a crash that left different bytes on disk than the journal promised.
    const data = await open(join(dir, "data"), "r+");
    await data.write(Buffer.from("w?yz"), 0, 4, 8);
    await data.close();
    const loaded = await StoredTask.load(dir);
    assert.equal(loaded.hasPiece(2), false);
    await loaded.close();
  });

  it("ignores a torn last journal line", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    const bytes = Buffer.from("abcd");
    await task.writePiece({ number: 0, offset: 0, length: 4, sha256: pieceDigestOf(bytes) }, bytes);
    await task.close();
    await appendFile(join(dir, "pieces.log"), '{"number":1,"off');
    const loaded = await StoredTask.load(dir);
    assert.deepEqual(
      loaded.pieces().map((p) => p.number),
      [0],
    );
    await loaded.close();
  });

  it("reopens a task marked finished whose pieces are incomplete as unfinished", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    await task.markFinished();
    await task.close();
    const loaded = await StoredTask.load(dir);
    assert.equal(loaded.finished, false);
    await loaded.close();
  });

  it("reads as finished only once its data file is sealed, so an edit made as soon as it does is noticed", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    const bytes = Buffer.from("abcdefghijkl");
    for (let number = 0; number < 3; number++) {
      const piece = bytes.subarray(number * 4, number * 4 + 4);
      await task.writePiece({ number, offset: number * 4, length: 4, sha256: pieceDigestOf(piece) }, piece);
    }
    const finishing = task.markFinished();
    while (!task.finished) await new Promise((resolve) => setImmediate(resolve));
    // Written the moment the task reads as finished, while its meta.json is still being synced.
    const data = await open(join(dir, "data"), "r+");
    await data.write(Buffer.from("X"), 0, 1, 5);
    await data.close();
    assert.equal(await task.checkUnchanged(), false, "the edit differs from the sealed identity");
    await finishing;
    await task.verifyIfChanged();
    assert.equal(task.hasPiece(1), false, "the edited piece was dropped");
    assert.equal(task.finished, false);
    await task.close();
  });

  it("hashes its content anew after a re-verification dropped pieces: a digest taken of edited bytes is not remembered", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    const bytes = Buffer.from("abcdefghijkl");
    const pieces = [0, 1, 2].map((number) => ({ number, offset: number * 4, length: 4, sha256: pieceDigestOf(bytes.subarray(number * 4, number * 4 + 4)) }));
    for (const piece of pieces) await task.writePiece(piece, bytes.subarray(piece.offset, piece.offset + 4));
    await task.markFinished();
    const data = await open(join(dir, "data"), "r+");
    await data.write(Buffer.from("X"), 0, 1, 5);
    await data.close();
    const ofEdited = await task.contentDigest("sha256");
    assert.equal(ofEdited, `sha256:${createHash("sha256").update("abcdeXghijkl").digest("hex")}`);

    await task.verifyIfChanged();
    assert.equal(task.hasPiece(1), false);
    await task.writePiece(pieces[1]!, bytes.subarray(4, 8));
    await task.markFinished();
    assert.equal(await task.contentDigest("sha256"), `sha256:${createHash("sha256").update(bytes).digest("hex")}`);
    await task.close();
  });

  it("rejects a piece whose byte count does not match its range", async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    await assert.rejects(task.writePiece({ number: 0, offset: 0, length: 4, sha256: "0".repeat(64) }, Buffer.from("ab")), /expected 4/);
    await task.close();
  });
});
