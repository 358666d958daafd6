import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { HostType, RpcError } from "@lacewing/api";
import { ErrorCode } from "@lacewing/common";
import { PeerStream, announce, cleanupAfterEach, startFakeDaemon, startScheduler, until } from "../testing/harness.js";

const TASK = "c".repeat(64);
const LENGTH = 100_000;
const PIECE = 65_536;
const digests = [createHash("sha256").update("p0").digest(), createHash("sha256").update("p1").digest()];
const hour = (now: number) => ({ replicas: 2, expiresAtMs: BigInt(now + 3_600_000), ttlMs: 3_600_000n });

function registerComplete(stream: PeerStream, persistent: { replicas: number; expiresAtMs: bigint; ttlMs: bigint }): void {
  stream.send({
    case: "register",
    value: {
      download: { url: `dfcache://${TASK}` },
      complete: true,
      taskInfo: { taskId: TASK, contentLength: BigInt(LENGTH), pieceLength: BigInt(PIECE), totalPieces: 2 },
      pieceSha256: digests,
      persistent,
    },
  });
}

const code = (expected: string) => (err: unknown) => err instanceof RpcError && err.code === expected;

describe("Scheduler: persistent cache tasks (dfcache)", () => {
  const cleanup = cleanupAfterEach();

  it("an import is a complete holder with its metadata; StatTask reports it; a download of it registers without a URL-derived id", async () => {
    const { scheduler, client, close } = await startScheduler();
    cleanup(close);
    await announce(client, "importer");
    const importer = new PeerStream(client, "importer", "imp", TASK);
    registerComplete(importer, hour(Date.now()));
    assert.equal((await importer.next()).response.case, "taskComplete");
    const stat = await client.statTask({ taskId: TASK });
    assert.equal(stat.persistent?.cache?.replicas, 2);
    assert.equal(stat.persistent?.replicasHeld, 1);
    assert.deepEqual(stat.persistent?.holderHostIds, ["importer"]);

    await announce(client, "n1");
    const child = new PeerStream(client, "n1", "child", TASK);
    child.send({ case: "register", value: { persistent: hour(Date.now()) } });
    const answer = await child.next();
    assert.equal(answer.response.case, "normalTask");
    assert.equal(scheduler.registry.tasks.get(TASK)?.persistent?.replicas, 2);
  });

  it("refuses metadata out of bounds: replicas 0 or above 64, a TTL above 7 days, an expiry further away", async () => {
    const { client, close } = await startScheduler();
    cleanup(close);
    await announce(client, "importer");
    const now = Date.now();
    for (const bad of [
      { replicas: 0, expiresAtMs: BigInt(now + 60_000), ttlMs: 60_000n },
      { replicas: 65, expiresAtMs: BigInt(now + 60_000), ttlMs: 60_000n },
      { replicas: 1, expiresAtMs: BigInt(now + 60_000), ttlMs: BigInt(8 * 86_400_000) },
      { replicas: 1, expiresAtMs: BigInt(now + 8 * 86_400_000), ttlMs: 60_000n },
    ]) {
      const stream = new PeerStream(client, "importer", "imp", TASK);
      registerComplete(stream, bad);
      await assert.rejects(
        stream.next(),
        code(ErrorCode.badRequest),
        JSON.stringify(bad, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v)),
      );
    }
  });

  it("a download of an unknown persistent task fails with LW_ERR_CACHE_NOT_FOUND; one nobody can serve is never sent to a source", async () => {
    const { client, close } = await startScheduler({ scheduleTimeout: 300 });
    cleanup(close);
    await announce(client, "n1");
    const stranger = new PeerStream(client, "n1", "s", TASK);
    stranger.send({ case: "register", value: { persistent: hour(Date.now()) } });
    await assert.rejects(stranger.next(), code(ErrorCode.cacheNotFound));

    await announce(client, "importer");
    const importer = new PeerStream(client, "importer", "imp", TASK);
    registerComplete(importer, hour(Date.now()));
    await importer.next();
    // A child on the holder's own host has no parent it may use: it waits, then hears that no holder can serve it.
    // The scheduler never names a source for it (nothing to fetch from); its daemon turns this into a failure.
    const child = new PeerStream(client, "importer", "child", TASK);
    child.send({ case: "register", value: { persistent: hour(Date.now()) } });
    const answer = await child.next();
    assert.equal(answer.response.case, "needBackToSource");
    assert.match(answer.response.value.description, /no holder of the persistent task can serve it/);
  });

  it("places a replica on a seed peer through TriggerDownload, peer-to-peer only, and DeletePersistentTask orders every holder to delete", async () => {
    const daemon = await startFakeDaemon(async () => ({ taskId: TASK, finished: false, description: "accepted" }));
    cleanup(daemon.close);
    const { scheduler, client, close } = await startScheduler();
    cleanup(close);
    await announce(client, "seed", { type: HostType.SEED, port: daemon.port });
    await announce(client, "importer");
    const importer = new PeerStream(client, "importer", "imp", TASK);
    registerComplete(importer, hour(Date.now()));
    await importer.next();
    await until(() => daemon.calls.length > 0);
    const order = daemon.calls[0]!;
    assert.equal(order.persistentTaskId, TASK);
    assert.equal(order.persistent?.replicas, 2);
    assert.equal(order.download, undefined, "no origin download rides along");

    const expiresAt = scheduler.registry.tasks.get(TASK)!.persistent!.expiresAt;
    const answer = await client.deletePersistentTask({ taskId: TASK });
    assert.equal(answer.holders, 2, "the importer and the seed ordered");
    assert.equal(scheduler.registry.tasks.has(TASK), false);
    await assert.rejects(client.deletePersistentTask({ taskId: TASK }), code(ErrorCode.cacheNotFound));
    // The importer comes back with the same copy: refused, so it removes it.
    const again = new PeerStream(client, "importer", "imp2", TASK);
    registerComplete(again, { replicas: 2, expiresAtMs: BigInt(expiresAt), ttlMs: 3_600_000n });
    await assert.rejects(again.next(), code(ErrorCode.cacheDeleted));
  });
});
