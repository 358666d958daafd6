// Attacks on the data plane by cluster members that lie (a real peer
// certificate, as a compromised node has): a parent that forges piece
// bytes behind the right digests, parents that announce pieces past the end
// and absurd piece lengths, and clients that take upload slots and never
// read. Each costs the victim that parent, never its process or its
// download: every honest download ends with the origin's bytes.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { taskIdOf } from "@lacewing/common";
import { PieceRequester } from "@lacewing/dfdaemon";
import { dfget, metricValue, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../../helpers/cluster.js";
import { FakeParent, deadProcesses } from "../../helpers/hostile.js";
import { TestOrigin, randomBytesOf } from "../../helpers/origin.js";
import { fetchPieceWith, outcomeOf, uploadGrant } from "../../helpers/peer.js";

const MiB = 1024 * 1024;
const PIECE = MiB;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/** The digest of every piece of `bytes`: what a member learns of a task from the scheduler's task updates. */
function digestsOf(bytes: Buffer, pieceLength = PIECE): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < bytes.byteLength; offset += pieceLength)
    out.push(
      createHash("sha256")
        .update(bytes.subarray(offset, offset + pieceLength))
        .digest(),
    );
  return out;
}

describe("hostile: parents that lie and clients that never read", () => {
  let root: string;
  let origin: TestOrigin;
  let scheduler: SchedulerProcess;
  let first: Daemon;
  const victims: Daemon[] = [];
  const fakes: FakeParent[] = [];
  const files = {
    "/forged.bin": randomBytesOf(16 * PIECE, 41),
    "/numbers.bin": randomBytesOf(16 * PIECE, 42),
    "/big.bin": randomBytesOf(32 * MiB, 43),
    "/other.bin": randomBytesOf(PIECE, 44),
    "/poisoned.bin": randomBytesOf(8 * PIECE, 45),
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-hostile-dp-"));
    origin = new TestOrigin(files);
    await origin.start();
    scheduler = await startScheduler();
    // The honest first holder is slow, so a child tries every parent it is given.
    first = await startPeer(root, "first", scheduler.address, ["--upload-rate-limit", "4MiB", "--upload-limit", "2", "--piece-timeout", "2s"]);
    await waitForHosts(scheduler.address, 1);
  });

  after(async () => {
    const dead = deadProcesses([scheduler, first, ...victims]);
    for (const fake of fakes) await fake.close();
    for (const p of [...victims, first, scheduler]) await p?.stop();
    await origin?.close();
    await rm(root, { recursive: true, force: true });
    assert.deepEqual(dead, [], "no parent killed a process");
  });

  async function victim(name: string): Promise<Daemon> {
    const daemon = await startPeer(root, name, scheduler.address);
    victims.push(daemon);
    await waitForHosts(scheduler.address, 1 + victims.length + fakes.length);
    return daemon;
  }

  /** `first` fetches the file from the origin, so the scheduler holds its length and digests. */
  async function seedWithFirst(path: keyof typeof files, pieceLength = "1MiB"): Promise<void> {
    const result = await dfget(first, origin.url(path), join(root, `first${path}`), "--piece-length", pieceLength);
    assert.equal(result.code, 0, result.stderr);
  }

  it("a parent serving forged bytes behind the scheduler's digests is caught, reported and excluded for every child; the bytes come from elsewhere", async () => {
    const path = "/forged.bin";
    const bytes = files[path];
    const taskId = taskIdOf({ url: origin.url(path) });
    await seedWithFirst(path);
    const forger = await FakeParent.start("forger", scheduler.address, {
      sync: () => [
        { response: { case: "taskInfo", value: { taskId, contentLength: BigInt(bytes.byteLength), pieceLength: BigInt(PIECE), totalPieces: 16 } } },
        ...Array.from({ length: 16 }, (_, number) => ({
          response: { case: "piece" as const, value: { number, offset: BigInt(number * PIECE), length: BigInt(PIECE) } },
        })),
      ],
      // Right length, wrong bytes: what a crc32 announced by the parent itself would have let through.
      serve: () => randomBytes(PIECE),
    });
    fakes.push(forger);
    assert.equal((await forger.registerComplete(taskId, { contentLength: bytes.byteLength, pieceLength: PIECE }, digestsOf(bytes)))?.case, "taskComplete");

    const one = await victim("victim-1");
    const result = await dfget(one, origin.url(path), join(root, "victim-1.out"));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sha256(await readFile(join(root, "victim-1.out"))), sha256(bytes), "the origin's bytes, not the forger's");
    assert.ok(forger.uploadRequests > 0, "the forger was tried");
    assert.ok((await metricValue(one.ports.metrics, "lacewing_dfdaemon_piece_failures_total", { reason: "corrupt" })) >= 1, "the forged piece was caught");

    const seen = { sync: forger.syncCalls, upload: forger.uploadRequests };
    const two = await victim("victim-2");
    const again = await dfget(two, origin.url(path), join(root, "victim-2.out"));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(sha256(await readFile(join(root, "victim-2.out"))), sha256(bytes));
    assert.deepEqual({ sync: forger.syncCalls, upload: forger.uploadRequests }, seen, "excluded for the task: nobody else is handed the forger");
  });

  it("parents announcing piece 4,000,000, 1-byte pieces or 2 GiB pieces cost the child those parents, not its process", async () => {
    const path = "/numbers.bin";
    const bytes = files[path];
    const taskId = taskIdOf({ url: origin.url(path) });
    await seedWithFirst(path);
    const liars = [
      { name: "tiny-pieces", contentLength: BigInt(bytes.byteLength), pieceLength: 1n, number: 0 },
      { name: "huge-pieces", contentLength: 2n * 1024n * BigInt(MiB), pieceLength: 2n * 1024n * BigInt(MiB), number: 0 },
      { name: "past-the-end", contentLength: BigInt(bytes.byteLength), pieceLength: BigInt(PIECE), number: 4_000_000 },
    ];
    for (const liar of liars) {
      const fake = await FakeParent.start(liar.name, scheduler.address, {
        sync: () => [
          { response: { case: "taskInfo", value: { taskId, contentLength: liar.contentLength, pieceLength: liar.pieceLength, totalPieces: 6 } } },
          { response: { case: "pieces", value: { pieces: [{ number: liar.number, offset: 0n, length: liar.pieceLength }] } } },
        ],
        serve: () => Buffer.alloc(1),
      });
      fakes.push(fake);
      assert.equal((await fake.registerComplete(taskId, { contentLength: bytes.byteLength, pieceLength: PIECE }, digestsOf(bytes)))?.case, "taskComplete");
    }
    const child = await victim("victim-3");
    const result = await dfget(child, origin.url(path), join(root, "victim-3.out"));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sha256(await readFile(join(root, "victim-3.out"))), sha256(bytes));
    assert.equal(child.child.exitCode, null, "the child's daemon is alive");
    for (const fake of fakes.slice(-3)) assert.equal(fake.uploadRequests, 0, `${fake.name}: no piece was asked of a parent that lies about the task`);
  });

  it("upload slots held by a member that never reads are given back after the piece timeout, and pieces need a grant for their task", async () => {
    const path = "/big.bin";
    const bytes = files[path];
    const taskId = taskIdOf({ url: origin.url(path) });
    await seedWithFirst(path, "16MiB");
    await seedWithFirst("/other.bin");
    // Without a grant, or with another task's, nothing is served.
    const grant = await uploadGrant(first.ports.peer, taskId);
    const other = await uploadGrant(first.ports.peer, taskIdOf({ url: origin.url("/other.bin") }));
    assert.equal(outcomeOf(await fetchPieceWith(first.ports.upload, taskId, 0, "no-grant")), "unauthorized");
    assert.equal(outcomeOf(await fetchPieceWith(first.ports.upload, taskId, 0, other.token)), "unauthorized");
    other.close();

    // Both slots (--upload-limit 2), taken by connections that stop reading once their piece begins.
    const stalled: PieceRequester[] = [];
    for (const number of [0, 1]) {
      const child = await PieceRequester.connect(first.ports.upload);
      stalled.push(child);
      const started = child.pieceStarted();
      void child.request(taskId, number, grant.token);
      await started;
      child.pause();
    }
    assert.equal(outcomeOf(await fetchPieceWith(first.ports.upload, taskId, 0, grant.token)), "busy", "the slots are taken");

    const before = origin.bytesSent;
    const child = await victim("victim-4");
    const result = await dfget(child, origin.url(path), join(root, "victim-4.out"));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sha256(await readFile(join(root, "victim-4.out"))), sha256(bytes));
    assert.equal(origin.bytesSent, before, "every byte came from the parent once its stalled uploads were cut");
    assert.ok((await metricValue(first.ports.metrics, "lacewing_dfdaemon_upload_pieces_total", { result: "aborted" })) >= 2, "the stalled uploads were cut");
    for (const child of stalled) child.close();
    grant.close();
  });

  it("a task a compromised node poisoned (its own digests, its own bytes) fails its content digest, is tainted, and the next attempt gets the origin's bytes", async () => {
    const path = "/poisoned.bin";
    const bytes = files[path];
    const taskId = taskIdOf({ url: origin.url(path) });
    const forged = randomBytesOf(bytes.byteLength, 46);
    // The first to announce the task, with digests of its own forged bytes: consistent, so every piece check passes.
    const poisoner = await FakeParent.start("poisoner", scheduler.address, {
      sync: () => [
        { response: { case: "taskInfo", value: { taskId, contentLength: BigInt(bytes.byteLength), pieceLength: BigInt(PIECE), totalPieces: 8 } } },
        ...Array.from({ length: 8 }, (_, number) => ({
          response: { case: "piece" as const, value: { number, offset: BigInt(number * PIECE), length: BigInt(PIECE) } },
        })),
      ],
      serve: (_taskId, number) => forged.subarray(number * PIECE, (number + 1) * PIECE),
    });
    fakes.push(poisoner);
    assert.equal((await poisoner.registerComplete(taskId, { contentLength: bytes.byteLength, pieceLength: PIECE }, digestsOf(forged)))?.case, "taskComplete");

    const child = await victim("victim-5");
    const digest = `sha256:${sha256(bytes)}`;
    const first = await dfget(child, origin.url(path), join(root, "victim-5.out"), "--digest", digest);
    assert.equal(first.code, 5, `the content digest catches it: ${first.stderr}`);
    assert.match(first.stderr, /digest mismatch/);
    const served = poisoner.uploadRequests;
    assert.ok(served > 0);

    const before = origin.bytesSent;
    const again = await dfget(child, origin.url(path), join(root, "victim-5.out"), "--digest", digest);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(sha256(await readFile(join(root, "victim-5.out"))), sha256(bytes));
    assert.equal(poisoner.uploadRequests, served, "the tainted copy is not handed out again");
    assert.ok(origin.bytesSent - before >= bytes.byteLength, "the next attempt went to the origin");
  });
});
