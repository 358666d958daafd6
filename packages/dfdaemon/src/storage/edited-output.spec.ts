import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create, dfdaemonv1, type CallContext } from "@lacewing/api";
import { pieceDigestOf, silentLogger } from "@lacewing/common";
import type { DownloadSpec } from "../download/download-spec.js";
import { taskIdOfSpec } from "../download/download-spec.js";
import type { TaskFiller } from "../download/task-filler.js";
import { TaskManager } from "../download/task-manager.js";
import { createDfdaemonMetrics } from "../metrics.js";
import { peerService } from "../peer/peer-service.js";
import { editInPlace } from "../testing/edit-in-place.js";
import { downloadSpec, listeningUploadServer } from "../testing/fixtures.js";
import { requestPiece, type PieceAnswer } from "../testing/piece-requester.js";
import { UploadGrants } from "../upload/upload-grants.js";
import type { UploadServer } from "../upload/upload-server.js";
import { TaskStore } from "./task-store.js";

const PIECE = 4096;
const ORIGIN = Buffer.concat([Buffer.alloc(PIECE, "a"), Buffer.alloc(PIECE, "b"), Buffer.alloc(PIECE, "c")]);

/** The origin, in memory: writes every missing piece and records which it was asked for. */
function memoryOrigin(asked: number[]): TaskFiller {
  return async ({ task, ledger }) => {
    if (!task.lengthKnown) await task.setLength(ORIGIN.byteLength, PIECE);
    for (let number = 0; number < task.totalPieces; number++) {
      if (task.hasPiece(number)) continue;
      asked.push(number);
      const bytes = ORIGIN.subarray(number * PIECE, (number + 1) * PIECE);
      const piece = { number, offset: number * PIECE, length: PIECE, sha256: pieceDigestOf(bytes) };
      await task.writePiece(piece, bytes);
      ledger.record({ piece, source: "origin", parentId: "", costMs: 0 });
    }
  };
}

const grants = new UploadGrants();

/** A request of the upload port as a child holding a grant for the task. */
function ask(port: number, taskId: string, number: number): Promise<PieceAnswer> {
  return requestPiece(port, taskId, number, grants.issue(taskId).token);
}

describe("a cached task whose hard-linked output was edited in place (mtime set back)", () => {
  let dir: string;
  let store: TaskStore;
  let tasks: TaskManager;
  let upload: UploadServer;
  const asked: number[] = [];
  let urls = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-edited-"));
    store = new TaskStore(join(dir, "cache"), silentLogger());
    await store.open();
    const metrics = createDfdaemonMetrics(store);
    tasks = new TaskManager({ store, log: silentLogger(), metrics, fill: memoryOrigin(asked), outputTempTtlMs: 600_000 });
    upload = await listeningUploadServer(store, metrics, grants);
  });

  after(async () => {
    tasks.close();
    await upload.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Downloads a fresh URL to `first`, then edits byte 100 of piece 1 of that output. */
  const downloadAndEdit = async (): Promise<{ spec: DownloadSpec; taskId: string; first: string }> => {
    const first = join(dir, `first-${++urls}.bin`);
    const spec = downloadSpec(`http://origin.invalid/file-${urls}`, { outputPath: first });
    await tasks.download(spec, {});
    const taskId = taskIdOfSpec(spec);
    assert.equal((await stat(first)).ino, (await stat(store.get(taskId)!.dataPath)).ino, "placed as a hard link");
    await editInPlace(first, PIECE + 100, "EDITED");
    asked.length = 0;
    return { spec, taskId, first };
  };

  it("the next download gets the origin's bytes, fetching only the edited piece again, and leaves the edited file to its owner", async () => {
    const { spec, first } = await downloadAndEdit();
    const second = join(dir, "second.bin");
    const result = await tasks.download({ ...spec, outputPath: second }, {});
    assert.deepEqual(await readFile(second), ORIGIN);
    assert.deepEqual(asked, [1]);
    assert.equal(result.traffic.fromOrigin, PIECE);
    assert.match((await readFile(first)).toString("latin1"), /EDITED/);
  });

  it("a download with the right --digest after the edit succeeds with the origin's bytes instead of failing on the edited ones", async () => {
    const { spec } = await downloadAndEdit();
    const second = join(dir, "second-digest.bin");
    const digest = `sha256:${createHash("sha256").update(ORIGIN).digest("hex")}`;
    const result = await tasks.download({ ...spec, digest, outputPath: second }, {});
    assert.equal(result.digest, digest);
    assert.deepEqual(await readFile(second), ORIGIN);
  });

  it("an upload to a peer is refused while the task is verified again, never sends the edited bytes, and sends the origin's once fetched again", async () => {
    const { spec, taskId } = await downloadAndEdit();
    const during = await ask(upload.port, taskId, 1);
    assert.equal("refused" in during && during.refused, "verifying");
    await store.get(taskId)!.verifyIfChanged();
    const dropped = await ask(upload.port, taskId, 1);
    assert.equal("refused" in dropped && dropped.refused, "notFound", "the edited piece is dropped");
    assert.deepEqual(await ask(upload.port, taskId, 0), { piece: ORIGIN.subarray(0, PIECE) });
    await tasks.download({ ...spec, outputPath: "" }, {});
    assert.deepEqual(await ask(upload.port, taskId, 1), { piece: ORIGIN.subarray(PIECE, 2 * PIECE) });
  });

  it("SyncPieces never announces the edited piece to a child", async () => {
    const { taskId } = await downloadAndEdit();
    const abort = new AbortController();
    const service = peerService({ store, tasks, grants, log: silentLogger() }, new Set());
    const stream = service.syncPieces(create(dfdaemonv1.SyncPiecesRequestSchema, { taskId, peerId: "child", hostId: "child-host" }), {
      signal: abort.signal,
    } as CallContext);
    const announced: number[] = [];
    let finished = false;
    for await (const message of stream as AsyncIterable<{ response: { case: string; value?: { pieces?: Array<{ number: number }> } } }>) {
      if (message.response.case === "pieces") announced.push(...message.response.value!.pieces!.map((piece) => piece.number));
      if (message.response.case === "finished") finished = true;
      // The two intact pieces are all a verified task has to say before it is filled again.
      if (announced.length === 2) abort.abort();
    }
    assert.deepEqual(announced.sort(), [0, 2]);
    assert.equal(finished, false);
  });
});
