// The piece protocol end to end on loopback: the parent's upload server,
// the child's piece client, and parents that misbehave on the wire.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalPki, pieceDigestOf, silentLogger, type Security } from "@lacewing/common";
import { createDfdaemonMetrics, type DfdaemonMetrics } from "../metrics.js";
import { PieceClient, PieceFetchError, type PieceRequest, type PieceSource } from "../p2p/piece-client.js";
import { PieceBuffers } from "../storage/piece-buffers.js";
import { TaskStore } from "../storage/task-store.js";
import { PieceRequester } from "../testing/piece-requester.js";
import { FrameDecoder, FrameType, decodeRequest, encodePieceHeader } from "../transfer/frames.js";
import { UploadGrants } from "./upload-grants.js";
import type { UploadServer } from "./upload-server.js";
import { listeningUploadServer, taskMeta } from "../testing/fixtures.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const PIECE = 256 * KiB;
const TASK = "c".repeat(64);
const BIG_TASK = "d".repeat(64);
const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const content = Buffer.from(Array.from({ length: 2 * PIECE + 1000 }, (_, i) => (i * 7) % 251));
const big = Buffer.alloc(16 * MiB, 5);

function pieceOf(bytes: Buffer, number: number, length = PIECE): Buffer {
  return bytes.subarray(number * length, (number + 1) * length);
}

/** A parent on loopback whose download port does whatever `answer` does with each request. */
async function scriptedParent(answer: (socket: Socket, id: number, number: number) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    const decoder = new FrameDecoder(
      {
        control: (type, payload) => {
          if (type !== FrameType.request) return;
          const request = decodeRequest(payload);
          answer(socket, request.id, request.number);
        },
        pieceStart: () => undefined,
        pieceEnd: () => undefined,
      },
      { preface: true, maxPiece: 0 },
    );
    socket.on("data", (chunk: Buffer) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("the piece protocol between a parent's upload server and a child's piece client", () => {
  let dir: string;
  let store: TaskStore;
  let metrics: DfdaemonMetrics;
  const grants = new UploadGrants();
  const token = grants.issue(TASK).token;
  const bigToken = grants.issue(BIG_TASK).token;
  const servers: UploadServer[] = [];
  const clients: PieceClient[] = [];

  async function server(options: { limit?: number; idleTimeoutMs?: number; security?: Security } = {}): Promise<UploadServer> {
    const upload = await listeningUploadServer(store, metrics, grants, {
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
      ...(options.security?.mode === "tls" ? { tls: options.security.material } : {}),
    });
    servers.push(upload);
    return upload;
  }

  function client(security: Security = { mode: "insecure" }, buffers = new PieceBuffers(4 * MiB)): { pieces: PieceClient; buffers: PieceBuffers } {
    const pieces = new PieceClient(security, buffers);
    clients.push(pieces);
    return { pieces, buffers };
  }

  function request(number: number, overrides: Partial<PieceRequest> = {}): PieceRequest {
    const bytes = pieceOf(content, number);
    return {
      taskId: TASK,
      number,
      length: bytes.byteLength,
      sha256: sha256(bytes),
      token,
      timeoutMs: 5_000,
      signal: new AbortController().signal,
      ...overrides,
    };
  }

  const at = (port: number, tls = false): PieceSource => ({ ip: "127.0.0.1", port, tls });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-transfer-"));
    store = new TaskStore(dir, silentLogger());
    await store.open();
    metrics = createDfdaemonMetrics(store);
    for (const [taskId, bytes, pieceLength] of [
      [TASK, content, PIECE],
      [BIG_TASK, big, 16 * MiB],
    ] as const) {
      const task = await store.create(taskMeta({ taskId, url: `http://o/${taskId}`, contentLength: bytes.byteLength, pieceLength }));
      for (let number = 0; number < task.totalPieces; number++) {
        const piece = pieceOf(bytes, number, pieceLength);
        await task.writePiece({ number, offset: number * pieceLength, length: piece.byteLength, sha256: pieceDigestOf(piece) }, piece);
      }
      await task.markFinished();
    }
  });

  after(async () => {
    for (const pieces of clients) pieces.close();
    for (const upload of servers) await upload.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers requests pipelined on one connection, in order, with the verified bytes, in leased memory", async () => {
    const upload = await server();
    const { pieces, buffers } = client();
    const leases = await Promise.all([0, 1, 2, 0].map((number) => pieces.fetch(at(upload.port), request(number))));
    leases.forEach((lease, i) => assert.deepEqual(lease.bytes, pieceOf(content, [0, 1, 2, 0][i]!)));
    assert.equal(upload.connections, 1, "one connection carried every request");
    for (const lease of leases) lease.release();
    assert.equal(buffers.leasedBytes, 0);
  });

  it("a piece that does not match the scheduler's digest fails as corrupt, and the connection goes on serving", async () => {
    const upload = await server();
    const { pieces } = client();
    await assert.rejects(
      pieces.fetch(at(upload.port), request(1, { sha256: "0".repeat(64) })),
      (err: unknown) => err instanceof PieceFetchError && err.reason === "corrupt",
    );
    (await pieces.fetch(at(upload.port), request(1))).release();
    assert.equal(upload.connections, 1);
  });

  it("refuses a request without a grant for its task, a piece it does not hold, and more uploads than its slots", async () => {
    const upload = await server({ limit: 1 });
    const { pieces } = client();
    const reason = async (promise: Promise<unknown>): Promise<string> => {
      try {
        await promise;
        return "served";
      } catch (err) {
        return err instanceof PieceFetchError ? err.reason : String(err);
      }
    };
    assert.equal(await reason(pieces.fetch(at(upload.port), request(0, { token: bigToken }))), "other", "another task's grant");
    assert.equal(await reason(pieces.fetch(at(upload.port), request(7, { length: 10 }))), "not_found");
    // The one slot, held by a child that stops reading a 16 MiB piece.
    const hog = await PieceRequester.connect(upload.port);
    const started = hog.pieceStarted();
    void hog.request(BIG_TASK, 0, bigToken);
    await started;
    hog.pause();
    const busy = pieces.fetch(at(upload.port), request(0));
    await assert.rejects(busy, (err: unknown) => err instanceof PieceFetchError && err.reason === "busy" && err.retryAfterMs > 0);
    hog.close();
  });

  it("a request cancelled while queued is skipped by the parent and its memory comes back", async () => {
    const upload = await server();
    const { pieces, buffers } = client(undefined, new PieceBuffers(32 * MiB));
    const bigPiece = { taskId: BIG_TASK, number: 0, length: big.byteLength, sha256: sha256(big), token: bigToken, timeoutMs: 5_000 };
    const first = pieces.fetch(at(upload.port), { ...bigPiece, signal: new AbortController().signal });
    const abort = new AbortController();
    const second = pieces.fetch(at(upload.port), request(2, { signal: abort.signal }));
    abort.abort();
    await assert.rejects(second, (err: unknown) => err instanceof PieceFetchError && /cancelled/.test(err.message));
    (await first).release();
    (await pieces.fetch(at(upload.port), request(2))).release();
    assert.equal(buffers.leasedBytes, 0);
  });

  it("a connection the parent closed as idle is replaced without failing the next request", async () => {
    const upload = await server({ idleTimeoutMs: 100 });
    const { pieces } = client();
    (await pieces.fetch(at(upload.port), request(0))).release();
    while (upload.connections > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    (await pieces.fetch(at(upload.port), request(1))).release();
  });

  it("a parent that stalls mid-piece times out; one that dies mid-piece fails as connect; one that sends another length is corrupt", async () => {
    const piece = pieceOf(content, 0);
    const stall = await scriptedParent((socket, id) => socket.write(Buffer.concat([encodePieceHeader(id, piece.byteLength), piece.subarray(0, 100)])));
    const die = await scriptedParent((socket, id) => socket.end(Buffer.concat([encodePieceHeader(id, piece.byteLength), piece.subarray(0, 100)])));
    const liar = await scriptedParent((socket, id) => socket.write(Buffer.concat([encodePieceHeader(id, 10), Buffer.alloc(10)])));
    const { pieces, buffers } = client();
    const reasonOf = async (port: number, timeoutMs = 5_000): Promise<string | undefined> =>
      pieces.fetch(at(port), request(0, { timeoutMs })).then(
        () => undefined,
        (err: unknown) => (err instanceof PieceFetchError ? err.reason : String(err)),
      );
    assert.equal(await reasonOf(stall.port, 200), "timeout");
    assert.equal(await reasonOf(die.port), "connect");
    assert.equal(await reasonOf(liar.port), "corrupt");
    assert.equal(buffers.leasedBytes, 0, "every lease came back");
    for (const parent of [stall, die, liar]) await parent.close();
  });

  it("a parent that goes silent times out though the child keeps sending it requests: only bytes received count as progress", async () => {
    // A parent whose link is gone: the child's writes still succeed (into its socket buffer), nothing comes back.
    const silent = await scriptedParent(() => undefined);
    const { pieces } = client();
    let failed: string | undefined;
    const first = pieces.fetch(at(silent.port), request(0, { timeoutMs: 300 })).then(
      () => "served",
      (err: unknown) => (failed = err instanceof PieceFetchError ? err.reason : String(err)),
    );
    let written = 0;
    try {
      while (failed === undefined && written < 10) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        // Every 100 ms, well inside the 300 ms stall timeout: a write counted as activity would keep the stalled request alive.
        pieces.fetch(at(silent.port), request(1, { timeoutMs: 300 })).catch(() => undefined);
        written++;
      }
      assert.equal(await first, "timeout");
      assert.ok(written < 10, `the first request failed only after ${written} more requests were written`);
    } finally {
      pieces.close();
      await silent.close();
    }
  });

  it("over TLS, serves a cluster member and nobody else", async () => {
    const pki = new LocalPki();
    const upload = await server({ security: pki.security("seed", "parent") });
    const { pieces } = client(pki.security("peer", "child"));
    (await pieces.fetch(at(upload.port, true), request(2))).release();
    const stranger = client(new LocalPki().security("peer", "stranger")).pieces;
    await assert.rejects(stranger.fetch(at(upload.port, true), request(2)), (err: unknown) => err instanceof PieceFetchError && err.reason === "connect");
    const manager = client(pki.security("manager")).pieces;
    await assert.rejects(manager.fetch(at(upload.port, true), request(2)), (err: unknown) => err instanceof PieceFetchError && err.reason === "connect");
  });
});
