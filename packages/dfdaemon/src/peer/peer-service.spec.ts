import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create, dfdaemonv1, type CallContext } from "@lacewing/api";
import { pieceDigestOf, silentLogger } from "@lacewing/common";
import { TaskManager } from "../download/task-manager.js";
import { createDfdaemonMetrics } from "../metrics.js";
import type { StoredTask } from "../storage/stored-task.js";
import { TaskStore } from "../storage/task-store.js";
import { UploadGrants } from "../upload/upload-grants.js";
import { peerService } from "./peer-service.js";
import { taskMeta } from "../testing/fixtures.js";

const PIECE = 1024;
const PIECES = 8;
const TASK_ID = "a".repeat(64);

type Message = { case: string; numbers: number[] };

function pieceOf(number: number): { piece: { number: number; offset: number; length: number; sha256: string }; bytes: Buffer } {
  const bytes = Buffer.alloc(PIECE, number);
  return { piece: { number, offset: number * PIECE, length: PIECE, sha256: pieceDigestOf(bytes) }, bytes };
}

describe("SyncPieces from a parent", () => {
  let dir: string;
  let store: TaskStore;
  let tasks: TaskManager;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-sync-"));
    store = new TaskStore(join(dir, "cache"), silentLogger());
    await store.open();
    tasks = new TaskManager({ store, log: silentLogger(), metrics: createDfdaemonMetrics(store), fill: () => Promise.resolve(), outputTempTtlMs: 600_000 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Opens the stream as a child holding `held` and collects its messages until it ends. */
  function sync(held: number[]): {
    messages: Message[];
    finished: Promise<void>;
    ended: Promise<void>;
    close: () => void;
    grants: UploadGrants;
    token: () => string;
  } {
    // No grace after a revoke: closing the stream ends the grant at once.
    const grants = new UploadGrants(0);
    let token = "";
    const service = peerService({ store, tasks, grants, log: silentLogger() }, new Set());
    const request = create(dfdaemonv1.SyncPiecesRequestSchema, { taskId: TASK_ID, peerId: "child", hostId: "child-host", heldPieces: held });
    const abort = new AbortController();
    const stream = service.syncPieces(request, { signal: abort.signal } as CallContext) as AsyncIterable<dfdaemonv1.SyncPiecesResponse>;
    const messages: Message[] = [];
    let onFinished = (): void => undefined;
    const finished = new Promise<void>((resolve) => (onFinished = resolve));
    const ended = (async () => {
      for await (const { response } of stream) {
        const numbers = response.case === "pieces" ? response.value.pieces.map((p) => p.number) : response.case === "piece" ? [response.value.number] : [];
        messages.push({ case: response.case ?? "", numbers });
        if (response.case === "grant") token = response.value.token;
        if (response.case === "finished") onFinished();
      }
    })();
    return { messages, finished, ended, close: () => abort.abort(), grants, token: () => token };
  }

  it("sends the pieces held at the start in one message, then each storage commit's pieces in one message, never one the child holds, and stays open after finished until the child closes it", async () => {
    const task: StoredTask = await store.create(
      taskMeta({
        taskId: TASK_ID,
        url: "http://origin.test/f",
        contentLength: PIECE * PIECES,
        pieceLength: PIECE,
        createdAt: Date.now(),
        lastAccessedAt: Date.now(),
      }),
    );
    for (const number of [0, 1, 2]) await task.writePiece(pieceOf(number).piece, pieceOf(number).bytes);

    const { messages, finished, ended, close, grants, token } = sync([1]);
    await new Promise((resolve) => setImmediate(resolve));
    // The pieces the task announces in one turn of the event loop: one storage commit's.
    const commits: number[][] = [];
    let turnOpen = false;
    task.on("piece", (piece) => {
      if (!turnOpen) {
        commits.push([]);
        turnOpen = true;
        setImmediate(() => (turnOpen = false));
      }
      commits.at(-1)!.push(piece.number);
    });
    // Written at once: the first commits alone, the rest wait for its sync and commit together.
    await Promise.all([3, 4, 5, 6, 7].map((number) => task.writePiece(pieceOf(number).piece, pieceOf(number).bytes)));
    await task.markFinished();
    await finished;
    // After `finished` the stream stays open and its grant valid, for a child still fetching from this parent.
    let open = true;
    void ended.then(() => (open = false));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(open, true, "the stream outlives `finished`");
    assert.equal(grants.allows(token(), TASK_ID), true, "the grant still admits piece requests");
    close();
    await ended;
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(grants.allows(token(), TASK_ID), false, "closing the stream revokes the grant");

    assert.deepEqual(
      messages.slice(0, 2).map((m) => m.case),
      ["grant", "taskInfo"],
    );
    assert.deepEqual(messages[2], { case: "pieces", numbers: [0, 2] }, "what was held at the start, less what the child holds, in one message");
    assert.deepEqual(messages.at(-1)!.case, "finished");
    assert.deepEqual(
      messages.slice(3, -1).map((m) => m.numbers),
      commits,
      "one message per commit",
    );
    assert.ok(
      commits.some((commit) => commit.length > 1),
      `some commit held several pieces: ${JSON.stringify(commits)}`,
    );
  });
});
