import assert from "node:assert/strict";
import { once } from "node:events";
import { get, type IncomingMessage } from "node:http";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pieceDigestOf, isLacewingError, silentLogger } from "@lacewing/common";
import { createDfdaemonMetrics } from "../metrics.js";
import { TaskStore } from "../storage/task-store.js";
import { UploadGrants } from "../upload/upload-grants.js";
import { UploadServer, piecePath } from "../upload/upload-server.js";
import { CacheCollector } from "./collector.js";

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
  const authorization = `Bearer ${token}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-gc-upload-"));
    store = new TaskStore(dir, silentLogger());
    await store.open();
    const metrics = createDfdaemonMetrics(store);
    upload = new UploadServer({ store, metrics, log: silentLogger(), limit: 4, rateLimit: 0, superSeedWindowMs: 0, grants, idleTimeoutMs: 30_000 });
    await upload.listen("127.0.0.1", 0);
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
    const task = await store.create({
      taskId: TASK,
      url: "http://o/f",
      contentLength: piece.length,
      pieceLength: piece.length,
      digest: "",
      finished: false,
      createdAt: 0,
      lastAccessedAt: 0,
    });
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
    const request = get(`http://127.0.0.1:${upload.port}${piecePath(TASK, 0)}`, { headers: { authorization } });
    const [response] = (await once(request, "response")) as [IncomingMessage];
    response.pause();
    assert.equal(response.statusCode, 200);

    const pass = await collector.collect();
    assert.deepEqual(pass.evictions, [], "the collector skips a task being uploaded");
    assert.equal(pass.busyTaskCount, 1);
    await assert.rejects(collector.evict(TASK), (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_TASK_BUSY");
    assert.notEqual(store.get(TASK), undefined);
    await stat(join(store.root, TASK, "data"));

    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.resume();
    await once(response, "end");
    assert.ok(Buffer.concat(chunks).equals(piece), "the peer received the whole piece, unchanged");

    // The server counts the reader out when its pipeline settles, just after the client saw the end.
    while (store.get(TASK)!.activeReaders > 0) await new Promise((resolve) => setImmediate(resolve));
    const after = await collector.collect();
    assert.deepEqual(
      after.evictions.map((e) => e.taskId),
      [TASK],
    );
    assert.deepEqual(evicted, [TASK]);
    await assert.rejects(stat(join(store.root, TASK)), { code: "ENOENT" });
    const gone = await fetch(`http://127.0.0.1:${upload.port}${piecePath(TASK, 0)}`, { headers: { authorization } });
    assert.equal(gone.status, 404, "an evicted piece is never served");
  });
});
