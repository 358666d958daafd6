import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { ErrorCode, deferred, isLacewingError, pieceDigestOf, silentLogger } from "@lacewing/common";
import { daemonError } from "../errors.js";
import { createDfdaemonMetrics } from "../metrics.js";
import { downloadSpec, taskMeta, tempStore } from "../testing/fixtures.js";
import { taskIdOfSpec, type DownloadSpec } from "./download-spec.js";
import type { FillRequest, TaskFiller } from "./task-filler.js";
import { TaskManager } from "./task-manager.js";

const CONTENT = Buffer.from("the origin's bytes");

describe("TaskManager: a download joining a running one keeps its own options", () => {
  const temp = tempStore("lacewing-join-");
  let urls = 0;

  /** A filler that waits for `release`, then fails as the origin would for the run's options, or stores the content. */
  function gatedOrigin(): { fill: TaskFiller; release: () => void; calls: FillRequest[] } {
    const gate = deferred<void>();
    const calls: FillRequest[] = [];
    const fill: TaskFiller = async (request) => {
      calls.push(request);
      await gate.promise;
      if (request.spec.disableBackToSource === true) throw daemonError(ErrorCode.noSource, "unavailable", "back-to-source is disabled");
      const authorization = Object.entries(request.spec.requestHeaders).find(([name]) => name.toLowerCase() === "authorization")?.[1];
      if (authorization !== "Bearer right")
        throw daemonError(ErrorCode.originStatus, "unauthenticated", "origin returned HTTP 401", undefined, { status: 401, retryable: false });
      const { task } = request;
      await task.setLength(CONTENT.byteLength, 64 * 1024);
      const piece = { number: 0, offset: 0, length: CONTENT.byteLength, sha256: pieceDigestOf(CONTENT) };
      if (await task.writePiece(piece, CONTENT)) request.ledger.record({ piece, source: "origin", parentId: "", costMs: 1 });
    };
    return { fill, release: () => gate.resolve(), calls };
  }

  function manager(fill: TaskFiller): TaskManager {
    return new TaskManager({ store: temp.store, log: silentLogger(), metrics: createDfdaemonMetrics(temp.store), fill, outputTempTtlMs: 600_000 });
  }

  function spec(overrides: Partial<DownloadSpec>): DownloadSpec {
    return downloadSpec(`http://origin.example/join-${urls}`, { requestHeaders: { authorization: "Bearer right" }, ...overrides });
  }

  const code = (err: unknown): string => (isLacewingError(err) ? err.code : String(err));

  it("a joiner allowed back to source succeeds where the run it joined, with back-to-source disabled, fails", async () => {
    urls++;
    const origin = gatedOrigin();
    const tasks = manager(origin.fill);
    const first = tasks.download(spec({ disableBackToSource: true }), {}).catch(code);
    const joiner = tasks.download(spec({}), {});
    origin.release();
    assert.equal(await first, ErrorCode.noSource);
    assert.equal((await joiner).traffic.fromOrigin, CONTENT.byteLength);
    assert.equal(origin.calls.length, 2, "the joiner got a run with its own options");
  });

  it("a joiner with other request headers succeeds where the origin refused the run's", async () => {
    urls++;
    const origin = gatedOrigin();
    const tasks = manager(origin.fill);
    const first = tasks.download(spec({ requestHeaders: { authorization: "Bearer wrong" } }), {}).catch(code);
    const joiner = tasks.download(spec({ requestHeaders: { Authorization: "Bearer right" } }), {});
    origin.release();
    assert.equal(await first, ErrorCode.originStatus);
    await joiner;
    assert.equal(origin.calls[1]!.spec.requestHeaders["Authorization"], "Bearer right", "the origin saw the joiner's own headers");
  });

  it("a joiner with the same options shares the run and its outcome: the origin is asked once", async () => {
    urls++;
    const origin = gatedOrigin();
    const tasks = manager(origin.fill);
    const wrong = { requestHeaders: { authorization: "Bearer wrong" } };
    const both = [tasks.download(spec(wrong), {}).catch(code), tasks.download(spec(wrong), {}).catch(code)];
    origin.release();
    assert.deepEqual(await Promise.all(both), [ErrorCode.originStatus, ErrorCode.originStatus]);
    assert.equal(origin.calls.length, 1);
  });
});

describe("TaskManager: a digest mismatch", () => {
  const temp = tempStore("lacewing-mismatch-");

  it("is not remembered: once the origin serves the expected content, the same download succeeds without a restart", async () => {
    let content = Buffer.from("an old build");
    const fill: TaskFiller = async ({ task, ledger }) => {
      await task.setLength(content.byteLength, 64 * 1024);
      const piece = { number: 0, offset: 0, length: content.byteLength, sha256: pieceDigestOf(content) };
      if (await task.writePiece(piece, content)) ledger.record({ piece, source: "origin", parentId: "", costMs: 1 });
    };
    const tasks = new TaskManager({ store: temp.store, log: silentLogger(), metrics: createDfdaemonMetrics(temp.store), fill, outputTempTtlMs: 600_000 });
    const fresh = Buffer.from("the new build");
    const wanted = `sha256:${createHash("sha256").update(fresh).digest("hex")}`;
    const request = (digest: string): DownloadSpec => downloadSpec("http://origin.example/moving", { digest });
    // Cached first without a digest, then asked for with one it does not match: the cached copy goes.
    await tasks.download(request(""), {});
    await assert.rejects(tasks.download(request(wanted), {}), (err: unknown) => isLacewingError(err) && err.code === ErrorCode.digestMismatch);
    content = fresh;
    const result = await tasks.download(request(wanted), {});
    assert.equal(result.digest, wanted);
    assert.equal(result.traffic.fromOrigin, fresh.byteLength, "fetched again, not served from a remembered copy");
  });
});

describe("TaskManager: what a caller is told while it waits", () => {
  const temp = tempStore("lacewing-started-");

  it("reports the start as soon as the task exists, not after the run, and counts each waiting caller as a download", async () => {
    const gate = deferred<void>();
    const fill: TaskFiller = async ({ task, ledger }) => {
      await gate.promise;
      await task.setLength(CONTENT.byteLength, 64 * 1024);
      const piece = { number: 0, offset: 0, length: CONTENT.byteLength, sha256: pieceDigestOf(CONTENT) };
      if (await task.writePiece(piece, CONTENT)) ledger.record({ piece, source: "origin", parentId: "", costMs: 1 });
    };
    const tasks = new TaskManager({ store: temp.store, log: silentLogger(), metrics: createDfdaemonMetrics(temp.store), fill, outputTempTtlMs: 600_000 });
    const request = downloadSpec("http://origin.example/gated");
    const started = deferred<{ taskId: string; contentLength: number }>();
    const first = tasks.download(request, { onStart: (taskId, contentLength) => started.resolve({ taskId, contentLength }) });
    const second = tasks.download(request, {});
    const start = await started.promise;
    assert.deepEqual(start, { taskId: taskIdOfSpec(request), contentLength: -1 }, "started while the origin had not answered: length unknown");
    assert.equal(tasks.activeDownloads, 2, "two callers wait on one run");
    gate.resolve();
    await Promise.all([first, second]);
    assert.equal(tasks.activeDownloads, 0);
  });
});

describe("TaskManager: a resumed task", () => {
  const temp = tempStore("lacewing-resumed-");

  it("reports the pieces it kept as progress at once and as cache in its traffic", async () => {
    const request = downloadSpec("http://origin.example/resumed");
    const halves = [Buffer.from("kept"), Buffer.from("rest")];
    const pieceOf = (number: number) => ({ number, offset: number * 4, length: 4, sha256: pieceDigestOf(halves[number]!) });
    // What a restarted daemon finds: the task with its first piece, as left by the run before.
    const kept = await temp.store.create(taskMeta({ taskId: taskIdOfSpec(request), url: request.url, contentLength: 8, pieceLength: 4 }));
    await kept.writePiece(pieceOf(0), halves[0]!);
    const fill: TaskFiller = async ({ task, ledger }) => {
      for (const number of [0, 1]) {
        if (task.hasPiece(number)) continue;
        if (await task.writePiece(pieceOf(number), halves[number]!)) ledger.record({ piece: pieceOf(number), source: "origin", parentId: "", costMs: 1 });
      }
    };
    const tasks = new TaskManager({ store: temp.store, log: silentLogger(), metrics: createDfdaemonMetrics(temp.store), fill, outputTempTtlMs: 600_000 });
    const progress: number[] = [];
    const result = await tasks.download(request, { onProgress: (p) => progress.push(p.completedBytes) });
    assert.deepEqual(progress, [4, 8], "the kept piece first, before anything landed");
    assert.deepEqual(result.traffic, { fromOrigin: 4, fromPeers: 0, fromCache: 4 });
  });
});
