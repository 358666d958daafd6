import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pieceDigestOf, silentLogger } from "@lacewing/common";
import { TaskStore } from "./task-store.js";
import type { TaskMeta } from "./stored-task.js";
import { taskMeta } from "../testing/fixtures.js";

function meta(taskId: string): TaskMeta {
  return taskMeta({ taskId, url: "http://o/f", contentLength: 4, pieceLength: 4, createdAt: 1, lastAccessedAt: 1 });
}

describe("TaskStore", () => {
  const dirs: string[] = [];
  after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  const open = async (options: ConstructorParameters<typeof TaskStore>[2] = {}, dir?: string): Promise<TaskStore> => {
    const root = dir ?? (await mkdtemp(join(tmpdir(), "lacewing-taskstore-")));
    if (!dir) dirs.push(root);
    const store = new TaskStore(root, silentLogger(), options);
    await store.open();
    return store;
  };

  it("a task created again while its old files are being removed keeps its new files", async () => {
    const store = await open();
    await store.create(meta("t"));
    const removal = store.delete("t");
    const again = await store.create(meta("t"));
    await removal;
    const bytes = Buffer.from("abcd");
    await again.writePiece({ number: 0, offset: 0, length: 4, sha256: pieceDigestOf(bytes) }, bytes);
    assert.deepEqual(await again.readPiece(0), bytes);
    assert.deepEqual(await readdir(join(store.root, "t")), ["data", "meta.json", "pieces.log"]);
    await store.close();
  });

  it("acquire counts a reader in only for a stored task, and never for a deleted one", async () => {
    const store = await open();
    await store.create(meta("t"));
    const lease = store.acquire("t")!;
    assert.equal(lease.task.activeReaders, 1);
    lease.release();
    lease.release();
    assert.equal(lease.task.activeReaders, 0, "release is idempotent");
    assert.equal(store.acquire("missing"), undefined);
    const deleting = store.delete("t");
    assert.equal(store.acquire("t"), undefined);
    assert.equal(lease.task.acquire(), undefined, "a reference taken before the delete cannot be acquired after it");
    await deleting;
    await store.close();
  });

  it("with keep off starts empty and leaves nothing behind", async () => {
    const first = await open();
    await first.create(meta("t"));
    await first.close();
    const root = join(first.root, "..");
    const kept = await open({}, root);
    assert.notEqual(kept.get("t"), undefined, "kept by default");
    await kept.close();
    const fresh = await open({ keep: false }, root);
    assert.deepEqual(fresh.all(), []);
    await fresh.create(meta("u"));
    await fresh.close();
    assert.deepEqual(await readdir(root), []);
  });
});
