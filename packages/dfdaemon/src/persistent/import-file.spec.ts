import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createHash } from "node:crypto";
import { ErrorCode, silentLogger } from "@lacewing/common";
import { TaskStore } from "../storage/task-store.js";
import { importFile } from "./import-file.js";

const cache = { replicas: 2, expiresAt: Date.now() + 3_600_000, ttlMs: 3_600_000 };
const code = (expected: string) => (err: unknown) => err instanceof Error && "code" in err && err.code === expected;

describe("importFile", () => {
  let dir: string;
  let store: TaskStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-import-"));
    store = new TaskStore(join(dir, "data"), silentLogger());
    await store.open();
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const options = (path: string, taskId?: string) => ({ path, taskId, cache, pieceLength: 0, isDownloading: () => false });

  it("stores the file as a finished task named by its sha256, with a digest per piece, and an empty file as a task of no pieces", async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5, 9);
    await writeFile(join(dir, "a.bin"), bytes);
    const { task, digest } = await importFile(store, options(join(dir, "a.bin")));
    assert.equal(task.taskId, createHash("sha256").update(bytes).digest("hex"));
    assert.equal(digest, `sha256:${task.taskId}`);
    assert.equal(task.finished, true);
    assert.equal(task.contentLength, bytes.length);
    assert.equal(task.pieces().length, task.totalPieces);
    assert.deepEqual(task.persistent, cache);
    await writeFile(join(dir, "empty.bin"), "");
    const empty = await importFile(store, options(join(dir, "empty.bin")));
    assert.equal(empty.task.finished, true);
    assert.equal(empty.task.totalPieces, 0);
  });

  it("refuses a missing file, a directory and a FIFO with LW_ERR_INPUT, storing nothing", async () => {
    const before = await readdir(join(dir, "data", "tasks"));
    execFileSync("mkfifo", [join(dir, "fifo")]);
    for (const path of [join(dir, "missing.bin"), dir, join(dir, "fifo")]) await assert.rejects(importFile(store, options(path)), code(ErrorCode.input), path);
    assert.deepEqual(await readdir(join(dir, "data", "tasks")), before);
  });

  it("an id that already holds other content is refused and left as it was; the same content keeps its metadata", async () => {
    await writeFile(join(dir, "one.bin"), "one");
    await writeFile(join(dir, "two.bin"), "two");
    const id = "e".repeat(64);
    const first = await importFile(store, options(join(dir, "one.bin"), id));
    await assert.rejects(importFile(store, options(join(dir, "two.bin"), id)), code(ErrorCode.taskMismatch));
    assert.equal(await store.get(id)?.contentDigest("sha256"), first.digest);
    const again = await importFile(store, { ...options(join(dir, "one.bin"), id), cache: { ...cache, replicas: 5 } });
    assert.equal(again.task.persistent?.replicas, 2, "every copy keeps agreeing on the metadata");
  });
});
