import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pieceDigestOf, isLacewingError, silentLogger } from "@lacewing/common";
import { createDfdaemonMetrics } from "../metrics.js";
import { TaskStore } from "../storage/task-store.js";
import { PieceRequester, requestPiece } from "../testing/piece-requester.js";
import { UploadGrants } from "../upload/upload-grants.js";
import type { UploadServer } from "../upload/upload-server.js";
import { CacheCollector } from "./collector.js";
import { listeningUploadServer, taskMeta } from "../testing/fixtures.js";

const MiB = 1024 * 1024;
const TASK = "a".repeat(64);

describe("eviction while a piece is uploaded to a peer", () => {
  let dir: string;
  let store: TaskStore;
  let upload: UploadServer;
  let collector: CacheCollector;
  const evicted: string[] = [];
  // Larger than loopback socket buffers, so the upload stays in flight while the client does not read.
  const piece = Buffer.alloc(48 * MiB, 7);
  const grants = new UploadGrants();
  const { token } = grants.issue(TASK);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-gc-upload-"));
    store = new TaskStore(dir, silentLogger());
    await store.open();
    const metrics = createDfdaemonMetrics(store);
    upload = await listeningUploadServer(store, metrics, grants);
    collector = new CacheCollector({
      store,
      isDownloading: () => false,
      // Every task is past its TTL: only the upload keeps it.
      policy: { taskTtlMs: 0, quotaBytes: 0, highWatermark: 90, lowWatermark: 80 },
      intervalMs: 60_000,
      log: silentLogger(),
      evictions: metrics.evictions,
      onEvicted: (taskId) => evicted.push(taskId),
      filesystem: async () => undefined,
    });
    const task = await store.create(taskMeta({ taskId: TASK, url: "http://o/f", contentLength: piece.length, pieceLength: piece.length }));
    await task.writePiece({ number: 0, offset: 0, length: piece.length, sha256: pieceDigestOf(piece) }, piece);
    await task.markFinished();
  });

  after(async () => {
    await collector.close();
    await upload.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("is refused until the upload ends, the peer gets intact bytes, then the task is evicted", async () => {
    const child = await PieceRequester.connect(upload.port);
    child.pause();
    const answer = child.request(TASK, 0, token);
    while (upload.active === 0) await new Promise((resolve) => setTimeout(resolve, 5));

    const pass = await collector.collect();
    assert.deepEqual(pass.evictions, [], "the collector skips a task being uploaded");
    assert.equal(pass.busyTaskCount, 1);
    await assert.rejects(collector.evict(TASK), (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_TASK_BUSY");
    assert.notEqual(store.get(TASK), undefined);
    await stat(join(store.root, TASK, "data"));

    child.resume();
    const received = await answer;
    child.close();
    assert.ok("piece" in received && received.piece.equals(piece), "the peer received the whole piece, unchanged");

    // The server counts the reader out when its last write settles, just after the client saw the end.
    while (store.get(TASK)!.activeReaders > 0) await new Promise((resolve) => setImmediate(resolve));
    const after = await collector.collect();
    assert.deepEqual(
      after.evictions.map((e) => e.taskId),
      [TASK],
    );
    assert.deepEqual(evicted, [TASK]);
    await assert.rejects(stat(join(store.root, TASK)), { code: "ENOENT" });
    const gone = await requestPiece(upload.port, TASK, 0, token);
    assert.equal("refused" in gone && gone.refused, "notFound", "an evicted piece is never served");
  });
});
