// A download as a peer, with a fake scheduler and fake parents (testing/p2p-harness.ts):
// the dispatcher, the announce stream and the run, without processes or sockets.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pieceDigestOf, pieceRangeOf, silentLogger, taskIdOf } from "@lacewing/common";
import type { DownloadSpec } from "../download/download-spec.js";
import { PieceLedger } from "../download/piece-ledger.js";
import type { FillRequest, TaskFiller } from "../download/task-filler.js";
import { createDfdaemonMetrics, type DfdaemonMetrics } from "../metrics.js";
import { TaskStore } from "../storage/task-store.js";
import { FakeParents, FakeScheduler, taskUpdateOf, type FakeAnnounceStream } from "../testing/p2p-harness.js";
import { peerFiller, type PeerFillerOptions } from "./peer-filler.js";
import { downloadSpec, taskMeta } from "../testing/fixtures.js";

const PIECE = 64 * 1024;
const bytes = Buffer.from(Array.from({ length: 8 * PIECE - 100 }, (_, i) => (i * 13) % 256));
const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

describe("a download as a peer (fake scheduler, fake parents)", () => {
  let dir: string;
  let store: TaskStore;
  let metrics: DfdaemonMetrics;
  let runs = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-peer-run-"));
    store = new TaskStore(dir, silentLogger());
    await store.open();
    metrics = createDfdaemonMetrics(store);
  });

  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A fresh task, and what a filler is handed for it. */
  async function request(): Promise<FillRequest & { spec: DownloadSpec; taskId: string }> {
    const url = `http://origin.example/blob-${++runs}`;
    const taskId = taskIdOf({ url });
    const task = await store.create(taskMeta({ taskId, url }));
    const spec = downloadSpec(url);
    return { task, spec, taskId, signal: new AbortController().signal, ledger: new PieceLedger(metrics), verify: async () => undefined };
  }

  /** The origin, in memory: writes every missing piece. */
  const origin: TaskFiller = async ({ task, ledger }) => {
    if (!task.lengthKnown) await task.setLength(bytes.byteLength, PIECE);
    for (let number = 0; number < task.totalPieces; number++) {
      const range = pieceRangeOf(number, PIECE, bytes.byteLength);
      const piece = { ...range, sha256: pieceDigestOf(bytes.subarray(range.offset, range.offset + range.length)) };
      if (await task.writePiece(piece, bytes.subarray(range.offset, range.offset + range.length)))
        ledger.record({ piece, source: "origin", parentId: "", costMs: 0 });
    }
  };

  function options(scheduler: FakeScheduler, parents: FakeParents, overrides: Partial<PeerFillerOptions> = {}): PeerFillerOptions {
    return {
      pool: scheduler,
      hostId: "child-host",
      channels: parents,
      origin,
      peerConcurrency: 8,
      perParentLimit: 2,
      stallTimeoutMs: 2_000,
      pieceTimeoutMs: 2_000,
      maxReschedules: 3,
      answerTimeoutMs: 2_000,
      refreshIntervalMs: 60_000,
      log: silentLogger(),
      metrics,
      ...overrides,
    };
  }

  /** Answers the stream's register with the task's digests and these parents. */
  async function answerRegister(stream: FakeAnnounceStream, taskId: string, parents: ReturnType<FakeParents["add"]>[]): Promise<void> {
    await stream.next("register");
    const update = taskUpdateOf(taskId, bytes, PIECE);
    stream.respond({ response: { case: "taskUpdate", value: update } });
    stream.respond({ response: { case: "normalTask", value: { candidateParents: parents, taskInfo: update.taskInfo } } });
  }

  async function assertComplete(run: Awaited<ReturnType<typeof request>>): Promise<void> {
    assert.equal(run.task.pieceCount, run.task.totalPieces);
    assert.equal(sha256(await readFile(run.task.dataPath)), sha256(bytes));
    assert.equal(run.ledger.traffic.fromPeers + run.ledger.traffic.fromOrigin, bytes.byteLength, "every piece recorded once");
  }

  it("fetches every piece from its parents, each verified, records each once and tells the scheduler", async () => {
    const run = await request();
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const a = parents.add({ id: "a", bytes, pieceLength: PIECE, finished: true });
    const b = parents.add({ id: "b", bytes, pieceLength: PIECE, finished: true });
    const fill = peerFiller(options(scheduler, parents))(run);
    await answerRegister(await scheduler.stream(0), run.taskId, [a, b]);
    await fill;
    await assertComplete(run);
    assert.equal(run.ledger.traffic.fromPeers, bytes.byteLength);
    assert.ok(parents.requestsTo("a").length > 0 && parents.requestsTo("b").length > 0, "both parents were used");
    const stream = scheduler.streams[0]!;
    assert.equal(stream.count("pieceFinished"), run.task.totalPieces);
    await stream.next("peerFinished");
  });

  it("a parent lost mid-piece is dropped and reported, and the piece comes from another parent", async () => {
    const run = await request();
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const dying = parents.add({ id: "dying", bytes, pieceLength: PIECE, finished: true, behaviour: (n) => (n >= 2 ? "die" : "serve") });
    const steady = parents.add({ id: "steady", bytes, pieceLength: PIECE, finished: true });
    const fill = peerFiller(options(scheduler, parents))(run);
    await answerRegister(await scheduler.stream(0), run.taskId, [dying, steady]);
    await fill;
    await assertComplete(run);
    const failed = await scheduler.streams[0]!.next("pieceFailed");
    assert.equal(failed.case === "pieceFailed" && failed.value.parentId, "dying");
    assert.equal(parents.requestsTo("dying").filter((n) => n >= 2).length, 1, "given up on after its first failure");
  });

  it("a corrupt piece drops its parent and is fetched again elsewhere", async () => {
    const run = await request();
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const liar = parents.add({ id: "liar", bytes, pieceLength: PIECE, finished: true, behaviour: () => "corrupt" });
    const honest = parents.add({ id: "honest", bytes, pieceLength: PIECE, finished: true });
    const before = await metrics.pieceFailures.get();
    const fill = peerFiller(options(scheduler, parents))(run);
    await answerRegister(await scheduler.stream(0), run.taskId, [liar, honest]);
    await fill;
    await assertComplete(run);
    const corrupt = (await metrics.pieceFailures.get()).values.find((v) => v.labels.reason === "corrupt")?.value ?? 0;
    const was = before.values.find((v) => v.labels.reason === "corrupt")?.value ?? 0;
    assert.ok(corrupt > was);
  });

  it("drops a parent that goes silent after the stall timeout, not the piece timeout, and gets its pieces from another", async () => {
    const run = await request();
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const silent = parents.add({ id: "silent", bytes, pieceLength: PIECE, finished: true, behaviour: () => "stall" });
    const good = parents.add({ id: "good", bytes, pieceLength: PIECE, finished: true });
    const fill = peerFiller(options(scheduler, parents, { stallTimeoutMs: 250, pieceTimeoutMs: 60_000 }))(run);
    await answerRegister(await scheduler.stream(0), run.taskId, [silent, good]);
    await fill;
    await assertComplete(run);
    assert.equal(run.ledger.traffic.fromOrigin, 0);
    assert.ok(parents.requestsTo("silent").length > 0, "the silent parent was asked");
    assert.deepEqual(new Set([...parents.timeoutsTo("silent"), ...parents.timeoutsTo("good")]), new Set([250]), "every request carries the stall timeout");
  });

  it("in the endgame, the last piece stuck at a stalled parent is asked of an idle one, and the stalled request is cancelled", async () => {
    const run = await request();
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const last = Math.ceil(bytes.byteLength / PIECE) - 1;
    // Only the slow parent holds the last piece at first, so it is asked for it; it never answers.
    const slow = parents.add({ id: "slow", bytes, pieceLength: PIECE, holds: [last], behaviour: () => "stall" });
    const quick = parents.add({ id: "quick", bytes, pieceLength: PIECE, holds: Array.from({ length: last }, (_, n) => n) });
    const fill = peerFiller(options(scheduler, parents, { stallTimeoutMs: 60_000, pieceTimeoutMs: 60_000 }))(run);
    await answerRegister(await scheduler.stream(0), run.taskId, [slow, quick]);
    while (parents.requestsTo("slow").length === 0 || run.task.pieceCount < last) await new Promise((resolve) => setTimeout(resolve, 5));
    parents.announce("quick", [last]);
    await fill;
    await assertComplete(run);
    assert.deepEqual(parents.requestsTo("slow"), [last]);
    assert.ok(parents.requestsTo("quick").includes(last), "the idle parent was asked for the piece in flight elsewhere");
    const won = (await metrics.endgameRequests.get()).values.find((v) => v.labels.result === "won")?.value ?? 0;
    assert.ok(won >= 1);
  });

  /**
   * A download whose only parent stalls until the piece timeout, with another
   * parent ready; returns once its first stream has sent a refresh, unanswered.
   */
  async function refreshOutstanding() {
    const run = await request();
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const gone = parents.add({ id: "gone", bytes, pieceLength: PIECE, finished: true, behaviour: () => "stall" });
    const fresh = parents.add({ id: "fresh", bytes, pieceLength: PIECE, finished: true });
    const fill = peerFiller(options(scheduler, parents, { refreshIntervalMs: 10, stallTimeoutMs: 300 }))(run);
    const stream = await scheduler.stream(0);
    await answerRegister(stream, run.taskId, [gone]);
    const refresh = await stream.next("reschedule");
    assert.ok(refresh.case === "reschedule" && refresh.value.refresh === true);
    return { run, scheduler, fresh, fill, stream };
  }

  it("a stream that breaks with a refresh unanswered costs nothing: the reschedule registers again and takes its own answer", async () => {
    const { run, scheduler, fresh, fill, stream: first } = await refreshOutstanding();
    // The scheduler never answers the refresh, and the stream breaks.
    first.fail();
    // The only parent dies: the download re-registers on a new stream, where the answer is its own.
    const second = await scheduler.stream(1);
    await answerRegister(second, run.taskId, [fresh]);
    await fill;
    await assertComplete(run);
    assert.equal(run.ledger.traffic.fromOrigin, 0);
  });

  it("on one stream, a refresh's answer and a reschedule's are each taken for their own", async () => {
    const { run, fresh, fill, stream } = await refreshOutstanding();
    // The refresh is still unanswered when the reschedule (after the parent died) goes out.
    const reschedule = await waitFor(stream, (r) => r.case === "reschedule" && r.value.refresh !== true);
    assert.ok(reschedule);
    stream.respond({ response: { case: "normalTask", value: { candidateParents: [] } } }); // the refresh's: nobody new
    stream.respond({ response: { case: "normalTask", value: { candidateParents: [fresh] } } }); // the reschedule's
    await fill;
    await assertComplete(run);
    assert.equal(run.ledger.traffic.fromOrigin, 0, "the reschedule's parent served; nothing waited forever");
  });

  it("a kept piece the scheduler's digest contradicts (the object changed while the daemon was down) is dropped, never mixed in", async () => {
    const run = await request();
    // What a restarted daemon kept: piece 0 of an older version, fetched without validators.
    await run.task.setLength(bytes.byteLength, PIECE);
    const older = Buffer.alloc(PIECE, 7);
    await run.task.writePiece({ number: 0, offset: 0, length: PIECE, sha256: pieceDigestOf(older) }, older);
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const a = parents.add({ id: "a", bytes, pieceLength: PIECE, finished: true });
    const fill = peerFiller(options(scheduler, parents))(run);
    const stream = await scheduler.stream(0);
    const register = await stream.next("register");
    assert.deepEqual(register.case === "register" ? register.value.heldPieces : undefined, [0], "registered with the piece it kept");
    await answerRegister(stream, run.taskId, [a]);
    await fill;
    await assertComplete(run);
    assert.equal(stream.count("backToSourceStarted"), 1, "the origin decided");
  });

  it("a reschedule the scheduler never answers is given up after the answer timeout, and the download goes back to source", async () => {
    const run = await request();
    const scheduler = new FakeScheduler();
    const parents = new FakeParents();
    const gone = parents.add({ id: "gone", bytes, pieceLength: PIECE, finished: true, behaviour: () => "die" });
    const fill = peerFiller(options(scheduler, parents, { answerTimeoutMs: 200 }))(run);
    await answerRegister(await scheduler.stream(0), run.taskId, [gone]);
    // Later streams hear the register and never answer it.
    void (async () => {
      for (let index = 1; index < 4; index++) {
        const stream = await scheduler.stream(index);
        await stream.next("register");
      }
    })();
    await fill;
    await assertComplete(run);
    assert.equal(run.ledger.traffic.fromOrigin, bytes.byteLength - run.ledger.traffic.fromPeers);
    assert.ok(run.ledger.traffic.fromOrigin > 0, "the origin filled what the parents could not");
  });
});

/** The first request on `stream` matching `match`, waiting for it. */
async function waitFor(
  stream: FakeAnnounceStream,
  match: (request: FakeAnnounceStream["received"][number]) => boolean,
): Promise<FakeAnnounceStream["received"][number]> {
  for (;;) {
    const found = stream.received.find(match);
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
