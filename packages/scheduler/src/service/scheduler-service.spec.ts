import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HostType, RpcError, schedulerv1 } from "@lacewing/api";
import { rendezvousPick, taskIdOf } from "@lacewing/common";
import {
  announce,
  cleanupAfterEach,
  firstToSource,
  PeerStream,
  PIECE_LENGTH,
  parentIdsOf,
  pieceSha256,
  startFakeDaemon,
  startScheduler,
  TASK_1,
  until,
  URL_1,
} from "../testing/harness.js";

const cleanUp = cleanupAfterEach();

async function setup(...args: Parameters<typeof startScheduler>) {
  const started = await startScheduler(...args);
  cleanUp(started.close);
  return started;
}

function stream(...args: ConstructorParameters<typeof PeerStream>): PeerStream {
  const peer = new PeerStream(...args);
  cleanUp(() => peer.requests.end());
  return peer;
}

/** A peer told to go back to source says so, and reports the task's length and its first `pieces` pieces from the origin. */
function fetchFromOrigin(source: PeerStream, pieces = 1, contentLength = 4 * PIECE_LENGTH): void {
  source.send({ case: "backToSourceStarted", value: {} });
  source.send({ case: "taskInfo", value: { info: { contentLength: BigInt(contentLength), pieceLength: BigInt(PIECE_LENGTH) } } });
  for (let number = 0; number < pieces; number++)
    source.send({ case: "pieceFinished", value: { piece: { number, length: BigInt(PIECE_LENGTH), sha256: pieceSha256(number) } } });
}

describe("AnnouncePeer", () => {
  it("fails the stream with LW_ERR_HOST_NOT_ANNOUNCED for a host that never announced", async () => {
    const { client } = await setup();
    const peer = stream(client, "ghost", "p1");
    peer.register();
    await assert.rejects(
      peer.next(),
      (err: unknown) => err instanceof RpcError && err.code === "LW_ERR_HOST_NOT_ANNOUNCED" && err.kind === "failed_precondition",
    );
  });

  it("sends the first peer back to source when there are no seeds; a concurrent peer gets it as parent once it starts", async () => {
    const { client } = await setup();
    await announce(client, "h1");
    await announce(client, "h2");
    const { first, source, waitingAnswer } = await firstToSource(client, (host, peer) => stream(client, host, peer));
    assert.equal(first.response.case, "needBackToSource");
    source.send({ case: "backToSourceStarted", value: {} });
    const second = await waitingAnswer;
    assert.deepEqual(parentIdsOf(second), [source.peerId]);
    assert.equal(second.response.case === "normalTask" && second.response.value.taskInfo?.contentLength, -1n);
  });

  it("triggers exactly one seed download for many concurrent registrations, and all get the seed as parent", async () => {
    const { client } = await setup();
    const seedStreams: PeerStream[] = [];
    const seed = await startFakeDaemon(async (request) => {
      // Like a real seed: register the triggered download and start fetching from the origin.
      const download = request.download;
      assert.ok(download);
      const seedPeer = stream(client, "seed", `seed-peer-${seedStreams.length}`, taskIdOf({ url: download.url }));
      seedStreams.push(seedPeer);
      seedPeer.register(download);
      void seedPeer.next().then((response) => {
        if (response.response.case === "needBackToSource") seedPeer.send({ case: "backToSourceStarted", value: {} });
      });
      return { taskId: TASK_1, finished: false };
    });
    cleanUp(seed.close);
    await announce(client, "seed", { type: HostType.SEED, port: seed.port });
    const children = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        await announce(client, `h${i}`);
        const child = stream(client, `h${i}`, `child-${i}`);
        child.register({ url: URL_1, requestHeaders: { authorization: "Bearer secret" } });
        return child;
      }),
    );
    const answers = await Promise.all(children.map((child) => child.next()));
    for (const answer of answers) assert.deepEqual(parentIdsOf(answer), ["seed-peer-0"]);
    assert.equal(seed.calls.length, 1);
    const call = seed.calls[0];
    assert.equal(call?.download?.triggered, true);
    assert.equal(call?.wait, false);
    assert.equal(call?.download?.url, URL_1);
    assert.equal(call?.download?.requestHeaders["authorization"], "Bearer secret");
  });

  it("sends one of several seed peers triggered at once (preheat to all seed peers) to the source; the others get it as parent", async () => {
    const { client } = await setup();
    await announce(client, "seed-a", { type: HostType.SEED });
    await announce(client, "seed-b", { type: HostType.SEED });
    await announce(client, "node", { type: HostType.NORMAL });
    const download = { url: URL_1, triggered: true };
    const streams = [stream(client, "seed-a", "a"), stream(client, "seed-b", "b"), stream(client, "node", "n")];
    for (const s of streams) s.register(download);
    const answers = streams.map((s) => s.next().then((response) => [s, response] as const));
    const [source, first] = await Promise.race(answers);
    assert.equal(first.response.case, "needBackToSource");
    // The others wait while the source has not started, instead of fetching the same bytes.
    source.send({ case: "backToSourceStarted", value: {} });
    const rest = await Promise.all(answers.filter((_, i) => streams[i] !== source));
    // Each gets the source (and perhaps the other waiting peer, already downloading from it).
    for (const [, response] of rest) assert.ok(parentIdsOf(response).includes(source.peerId));
  });

  it("sends a second triggered seed peer to the source when the first one failed before starting", async () => {
    const { client } = await setup();
    await announce(client, "seed-a", { type: HostType.SEED });
    await announce(client, "seed-b", { type: HostType.SEED });
    const a = stream(client, "seed-a", "a");
    a.register({ url: URL_1, triggered: true });
    assert.equal((await a.next()).response.case, "needBackToSource");
    const b = stream(client, "seed-b", "b");
    b.register({ url: URL_1, triggered: true });
    const pending = b.next();
    a.send({ case: "peerFailed", value: { description: "origin said 500" } });
    assert.equal((await pending).response.case, "needBackToSource");
  });

  it("zones: under affinity with crossZoneOnce a zone with a seed of its own triggers that seed and gets parents from inside, one without takes parents across for its first peer only; under isolation a zone without a seed fetches once itself", async () => {
    // Two zones, each with a seed; a fake daemon per seed records what it was asked for.
    const triggered: string[] = [];
    const seedIn = async (client: Parameters<typeof stream>[0], zone: string) => {
      const seed = await startFakeDaemon(async (request) => {
        triggered.push(zone);
        const seedPeer = stream(client, `seed-${zone}`, `seed-${zone}-peer`, taskIdOf({ url: request.download!.url }));
        seedPeer.register(request.download);
        void seedPeer.next().then((response) => {
          if (response.response.case === "needBackToSource") fetchFromOrigin(seedPeer);
        });
        return { taskId: TASK_1, finished: false };
      });
      cleanUp(seed.close);
      await announce(client, `seed-${zone}`, { type: HostType.SEED, port: seed.port, idc: zone });
    };
    const affinity = await setup({ topology: "affinity", crossZoneOnce: true });
    await seedIn(affinity.client, "a");
    await seedIn(affinity.client, "b");
    await announce(affinity.client, "ha", { idc: "a" });
    await announce(affinity.client, "hb", { idc: "b" });
    const inA = stream(affinity.client, "ha", "child-a");
    inA.register();
    assert.deepEqual(parentIdsOf(await inA.next()), ["seed-a-peer"]);
    const inB = stream(affinity.client, "hb", "child-b");
    inB.register();
    assert.deepEqual(parentIdsOf(await inB.next()), ["seed-b-peer"], "zone b's own seed, not zone a's, which already fetches");
    assert.deepEqual(triggered.sort(), ["a", "b"]);

    // Affinity, and zone c has no seed: its first peer takes parents from zone a, its later ones only from inside.
    await announce(affinity.client, "hc1", { idc: "c" });
    await announce(affinity.client, "hc2", { idc: "c" });
    const c1 = stream(affinity.client, "hc1", "child-c1");
    c1.register();
    assert.ok(parentIdsOf(await c1.next()).length > 0, "the zone's first peer gets parents from another zone");
    const c2 = stream(affinity.client, "hc2", "child-c2");
    c2.register();
    const c2Answer = c2.next();
    c1.send({ case: "pieceFinished", value: { piece: { number: 0, length: BigInt(PIECE_LENGTH), parentId: "seed-a-peer", sha256: pieceSha256(0) } } });
    assert.deepEqual(parentIdsOf(await c2Answer), ["child-c1"], "the zone's next peer gets the first one, not the seeds across");

    const isolation = await setup({ topology: "isolation" });
    await seedIn(isolation.client, "a");
    await announce(isolation.client, "ha", { idc: "a" });
    await announce(isolation.client, "hb1", { idc: "b" });
    await announce(isolation.client, "hb2", { idc: "b" });
    const a = stream(isolation.client, "ha", "iso-a");
    a.register();
    assert.deepEqual(parentIdsOf(await a.next()), ["seed-a-peer"]);
    const b1 = stream(isolation.client, "hb1", "iso-b1");
    b1.register();
    const first = await b1.next();
    assert.equal(first.response.case, "needBackToSource", "zone b has no seed and may not use zone a's: one of its peers fetches");
    b1.send({ case: "backToSourceStarted", value: {} });
    const b2 = stream(isolation.client, "hb2", "iso-b2");
    b2.register();
    assert.deepEqual(parentIdsOf(await b2.next()), ["iso-b1"], "the zone's other peers take it as parent");
  });

  it("sends children back to source when the seed trigger fails, one at a time", async () => {
    const { client } = await setup();
    const seed = await startFakeDaemon(async () => {
      throw new Error("disk full");
    });
    cleanUp(seed.close);
    await announce(client, "seed", { type: HostType.SEED, port: seed.port });
    await announce(client, "h1");
    await announce(client, "h2");
    const a = stream(client, "h1", "a");
    a.register();
    assert.equal((await a.next()).response.case, "needBackToSource");
    const b = stream(client, "h2", "b");
    b.register();
    const pending = b.next();
    a.send({ case: "backToSourceStarted", value: {} });
    assert.deepEqual(parentIdsOf(await pending), ["a"]);
    assert.equal(seed.calls.length, 1);
  });

  it("falls back to one back-to-source child when the triggered seed download fails", async () => {
    const { client } = await setup();
    const seed = await startFakeDaemon(async (request) => {
      const seedPeer = stream(client, "seed", "seed-peer");
      seedPeer.register(request.download);
      void seedPeer.next().then(() => seedPeer.send({ case: "peerFailed", value: { description: "origin said 500" } }));
      return { taskId: TASK_1, finished: false };
    });
    cleanUp(seed.close);
    await announce(client, "seed", { type: HostType.SEED, port: seed.port });
    await announce(client, "h1");
    await announce(client, "h2");
    const { first, source, waitingAnswer } = await firstToSource(client, (host, peer) => stream(client, host, peer));
    assert.equal(first.response.case, "needBackToSource");
    source.send({ case: "backToSourceStarted", value: {} });
    assert.deepEqual(parentIdsOf(await waitingAnswer), [source.peerId]);
    assert.equal(seed.calls.length, 1);
  });

  it("excludes a parent for every child once a child it was handed to caught it serving a piece that failed its digest", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h0", "h1", "h2", "h3", "h4"]) await announce(client, id);
    await stream(client, "h0", "bad").finishAsParent(scheduler);
    await stream(client, "h1", "good").finishAsParent(scheduler);
    // A peer that was never handed "good" cannot get it excluded.
    const liar = stream(client, "h3", "liar");
    liar.register();
    await liar.next();
    liar.send({ case: "reschedule", value: { refresh: true, knownParentIds: ["bad", "good"] } });
    await liar.next();
    const child = stream(client, "h2", "child");
    child.register();
    assert.deepEqual(parentIdsOf(await child.next()), ["bad", "good"]);
    child.send({ case: "pieceFailed", value: { number: 0, parentId: "bad", reason: schedulerv1.PieceFailureReason.CORRUPT } });
    await until(() => scheduler.registry.tasks.get(TASK_1)?.excludedParents.has("bad") === true);
    const fresh = stream(client, "h4", "fresh");
    fresh.register();
    assert.deepEqual(parentIdsOf(await fresh.next()), ["good"]);
  });

  it("ignores a corrupt-piece report about a parent the scheduler never handed to the reporter", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h0", "h1", "h2"]) await announce(client, id);
    await stream(client, "h0", "honest").finishAsParent(scheduler);
    const first = stream(client, "h1", "first");
    await first.finishAsParent(scheduler);
    const accuser = stream(client, "h2", "accuser");
    accuser.register();
    await accuser.next();
    accuser.send({ case: "reschedule", value: { refresh: true, knownParentIds: ["honest", "first"] } });
    await accuser.next();
    accuser.send({ case: "pieceFailed", value: { number: 0, parentId: "someone-else", reason: schedulerv1.PieceFailureReason.CORRUPT } });
    accuser.send({ case: "reschedule", value: { refresh: true } });
    await accuser.next();
    assert.equal(scheduler.registry.tasks.get(TASK_1)?.excludedParents.size, 0);
  });

  it("blocklists the parents a reschedule names, then waits and goes back to source when none are left", async () => {
    const { client, scheduler } = await setup({ scheduleTimeout: 300 });
    for (const id of ["h1", "h2", "h3"]) await announce(client, id);
    await stream(client, "h1", "p1").finishAsParent(scheduler);
    const p2 = stream(client, "h2", "p2");
    assert.deepEqual(parentIdsOf(await p2.finishAsParent(scheduler)), ["p1"]);

    const child = stream(client, "h3", "child");
    child.register();
    assert.deepEqual(parentIdsOf(await child.next()), ["p1", "p2"]);
    child.send({ case: "reschedule", value: { failedParentIds: ["p1"] } });
    assert.deepEqual(parentIdsOf(await child.next()), ["p2"]);
    child.send({ case: "pieceFailed", value: { number: 0, parentId: "p2", reason: schedulerv1.PieceFailureReason.CONNECT } });
    child.send({ case: "reschedule", value: { failedParentIds: [] } });
    const started = Date.now();
    const last = await child.next();
    assert.equal(last.response.case, "needBackToSource");
    assert.ok(Date.now() - started >= 250, "waited for a parent before giving up");
    assert.match(await scheduler.metrics.registry.metrics(), /lacewing_scheduler_back_to_source_total\{reason="timeout"\} 1\n/);
  });

  it("sends a peer back to source once it used up maxReschedules", async () => {
    const { client, scheduler } = await setup({ maxReschedules: 2 });
    await announce(client, "h1");
    await announce(client, "h2");
    await stream(client, "h1", "parent").finishAsParent(scheduler);
    const child = stream(client, "h2", "child");
    child.register();
    assert.deepEqual(parentIdsOf(await child.next()), ["parent"]);
    for (let i = 0; i < 2; i++) {
      child.send({ case: "reschedule", value: { failedParentIds: [] } });
      assert.deepEqual(parentIdsOf(await child.next()), ["parent"]);
    }
    child.send({ case: "reschedule", value: { failedParentIds: [] } });
    assert.equal((await child.next()).response.case, "needBackToSource");
    assert.match(await scheduler.metrics.registry.metrics(), /lacewing_scheduler_back_to_source_total\{reason="reschedules"\} 1\n/);
  });

  it("stops handing out peers of a host as soon as it missed two announce intervals, and GC drops it", async () => {
    let now = Date.now();
    const { client, admin, scheduler } = await setup({}, { now: () => now });
    await announce(client, "short-lived", { announceIntervalSeconds: 1 });
    await announce(client, "h2", { announceIntervalSeconds: 30 });
    await stream(client, "short-lived", "parent").finishAsParent(scheduler);
    const early = stream(client, "h2", "early");
    early.register();
    assert.deepEqual(parentIdsOf(await early.next()), ["parent"]);
    await early.close();

    now += 2_500;
    const child = stream(client, "h2", "child");
    child.register();
    assert.equal((await child.next()).response.case, "needBackToSource");

    scheduler.collectGarbage();
    const { hosts } = await admin.listHosts({});
    assert.deepEqual(
      hosts.map((h) => h.host?.id),
      ["h2"],
    );
  });

  it("stops handing out a host's peer of a task after DeleteTask", async () => {
    const { client, scheduler } = await setup();
    await announce(client, "h1");
    await announce(client, "h2");
    await stream(client, "h1", "parent").finishAsParent(scheduler);
    assert.equal((await client.statTask({ taskId: TASK_1 })).finishedPeerCount, 1);
    // The host's owner may say it dropped the task.
    await client.deleteTask({ hostId: "h1", taskId: TASK_1 });
    const child = stream(client, "h2", "child");
    child.register();
    assert.equal((await child.next()).response.case, "needBackToSource");
  });

  it("keeps a finished peer as a parent after its stream closes, and drops an unfinished one", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h1", "h2", "h3"]) await announce(client, id);
    const finished = stream(client, "h1", "finished");
    await finished.finishAsParent(scheduler);
    await finished.close();
    const quitter = stream(client, "h2", "quitter");
    quitter.register();
    await quitter.next();
    await quitter.close();
    const stat = await client.statTask({ taskId: TASK_1 });
    assert.equal(stat.peerCount, 1);
    assert.equal(stat.state, schedulerv1.TaskState.SUCCEEDED);
    assert.equal(stat.info?.contentLength, 1_000n);

    const child = stream(client, "h3", "child");
    child.register();
    const answer = await child.next();
    assert.deepEqual(parentIdsOf(answer), ["finished"]);
    assert.equal(answer.response.case === "normalTask" && answer.response.value.candidateParents[0]?.finished, true);
  });

  it("records a peer that registers a complete task as a finished parent without scheduling it", async () => {
    const { client } = await setup();
    await announce(client, "h1");
    await announce(client, "h2");
    const restarted = stream(client, "h1", "restarted");
    const contentLength = 5n * BigInt(PIECE_LENGTH);
    restarted.send({
      case: "register",
      value: {
        download: { url: URL_1 },
        complete: true,
        taskInfo: { taskId: TASK_1, contentLength, pieceLength: BigInt(PIECE_LENGTH), totalPieces: 5 },
        pieceSha256: [0, 1, 2, 3, 4].map(pieceSha256),
      },
    });
    const answer = await restarted.next();
    assert.equal(answer.response.case, "taskComplete");
    await restarted.close();

    const child = stream(client, "h2", "child");
    child.register();
    const parents = await child.next();
    assert.deepEqual(parentIdsOf(parents), ["restarted"]);
    assert.equal(parents.response.case === "normalTask" && parents.response.value.taskInfo?.contentLength, contentLength);
    assert.deepEqual(child.digests().get(4), pieceSha256(4), "the restarted scheduler hands on the digests the cache announced");
  });

  it("answers a refresh at once with the current parents, without counting a reschedule", async () => {
    const { client, scheduler } = await setup({ maxReschedules: 0 });
    for (const id of ["h1", "h2", "h3"]) await announce(client, id);
    const source = stream(client, "h1", "source");
    source.register();
    assert.equal((await source.next()).response.case, "needBackToSource");
    fetchFromOrigin(source);
    const child = stream(client, "h2", "child");
    child.register();
    assert.deepEqual(parentIdsOf(await child.next()), ["source"]);
    const other = stream(client, "h3", "other");
    other.register();
    await other.next();
    other.send({ case: "pieceFinished", value: { piece: { number: 0, length: BigInt(PIECE_LENGTH), parentId: "source", sha256: pieceSha256(0) } } });
    await until(() => scheduler.registry.tasks.get(TASK_1)?.peers.get("other")?.pieces.size === 1);
    for (let i = 0; i < 3; i++) {
      child.send({ case: "reschedule", value: { refresh: true } });
      const answer = await child.next();
      assert.equal(answer.response.case, "normalTask");
      assert.deepEqual(parentIdsOf(answer).sort(), ["other", "source"]);
    }
    child.send({ case: "reschedule", value: { refresh: true, knownParentIds: ["source"] } });
    assert.deepEqual(parentIdsOf(await child.next()), ["other"], "parents the child already has are left out");
    assert.equal(scheduler.registry.tasks.get(TASK_1)?.peers.get("child")?.reschedules, 0);
  });

  it("records the flow of accepted piece reports: origin → source → child, for ListTasks and GetTaskFlow; rejected reports are not in it", async () => {
    const { client, admin, scheduler } = await setup();
    for (const id of ["h1", "h2"]) await announce(client, id);
    const source = stream(client, "h1", "source");
    source.register();
    assert.equal((await source.next()).response.case, "needBackToSource");
    fetchFromOrigin(source, 2);
    const child = stream(client, "h2", "child");
    child.register();
    assert.deepEqual(parentIdsOf(await child.next()), ["source"]);
    // The source's reports travel on their own stream: the digests must be in before the child's report is checked against them.
    await until(() => scheduler.registry.tasks.get(TASK_1)?.pieceDigests.size === 2);
    child.send({ case: "pieceFinished", value: { piece: { number: 1, length: BigInt(PIECE_LENGTH), parentId: "source", sha256: pieceSha256(1) } } });
    // A piece whose digest the scheduler does not hold is rejected, and so kept out of the flow.
    child.send({ case: "pieceFinished", value: { piece: { number: 3, length: BigInt(PIECE_LENGTH), parentId: "source", sha256: pieceSha256(3) } } });
    await until(() => scheduler.registry.tasks.get(TASK_1)?.peers.get("child")?.pieces.size === 1 && scheduler.flow.flowOf(TASK_1)?.landed === 3);
    const flow = await admin.getTaskFlow({ taskId: TASK_1 });
    assert.deepEqual(
      flow.peers.map((p) => [p.peerId, p.hostId]),
      [
        ["source", "h1"],
        ["child", "h2"],
      ],
    );
    assert.deepEqual(
      flow.edges.map((e) => [e.parent, e.child, Number(e.bytes), e.pieces]),
      [
        [-1, 0, 2 * PIECE_LENGTH, 2],
        [0, 1, PIECE_LENGTH, 1],
      ],
    );
    assert.deepEqual(flow.landingPiece, [0, 1, 1]);
    assert.deepEqual((await admin.getTaskFlow({ taskId: TASK_1, afterSeq: 2n })).landingChild, [1]);
    const { tasks } = await admin.listTasks({});
    assert.equal(tasks.length, 1);
    assert.equal(tasks[0]?.state, schedulerv1.TaskState.RUNNING);
    const childStatus = tasks[0]?.peers.find((p) => p.peerId === "child");
    assert.equal(childStatus?.finishedPieces, 1);
    assert.deepEqual(
      childStatus?.sources.map((s) => [s.parentId, Number(s.bytes)]),
      [["source", PIECE_LENGTH]],
    );
    assert.equal((await admin.listTasks({ taskId: "0".repeat(64) })).tasks.length, 0);
    await assert.rejects(admin.getTaskFlow({ taskId: "0".repeat(64) }), (err: unknown) => err instanceof RpcError && err.code === "LW_ERR_TASK_NOT_FOUND");
  });

  it("answers empty_task once the task is known to have zero bytes", async () => {
    const { client, scheduler } = await setup();
    await announce(client, "h1");
    await announce(client, "h2");
    const first = stream(client, "h1", "first");
    first.register();
    await first.next();
    first.send({ case: "backToSourceStarted", value: {} });
    first.send({ case: "taskInfo", value: { info: { taskId: TASK_1, contentLength: 0n, pieceLength: BigInt(PIECE_LENGTH), totalPieces: 0 } } });
    first.send({ case: "peerFinished", value: { contentLength: 0n, totalPieces: 0 } });
    await first.close();
    assert.equal(scheduler.registry.tasks.get(TASK_1)?.contentLength, 0);
    const second = stream(client, "h2", "second");
    second.register();
    assert.equal((await second.next()).response.case, "emptyTask");
    // A zero-byte task is neither a back-to-source decision nor a parent set.
    const metrics = await scheduler.metrics.registry.metrics();
    assert.match(metrics, /lacewing_scheduler_schedule_total\{result="empty"\} 1/);
    assert.match(metrics, /lacewing_scheduler_schedule_total\{result="back_to_source"\} 1\n/);
    assert.match(metrics, /lacewing_scheduler_back_to_source_total\{reason="first_peer"\} 1\n/);
  });

  it("answers a child waiting for pieces as soon as another peer reports one", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h1", "h2", "h3"]) await announce(client, id);
    const source = stream(client, "h1", "source");
    source.register();
    assert.equal((await source.next()).response.case, "needBackToSource");
    // The designated source has not started yet: the second child waits, a third as well.
    const middle = stream(client, "h2", "middle");
    middle.register();
    const middleAnswer = middle.next();
    fetchFromOrigin(source);
    assert.deepEqual(parentIdsOf(await middleAnswer), ["source"]);
    middle.send({ case: "pieceFinished", value: { piece: { number: 0, length: 4n, parentId: "source", costMs: 1, sha256: pieceSha256(0) } } });
    await until(() => scheduler.registry.tasks.get(TASK_1)?.peers.get("middle")?.pieces.has(0) === true);
    const last = stream(client, "h3", "last");
    last.register();
    assert.deepEqual(parentIdsOf(await last.next()), ["middle", "source"]);

    const metrics = await scheduler.metrics.registry.metrics();
    assert.match(metrics, /lacewing_scheduler_schedule_total\{result="back_to_source"\} 1/);
    assert.match(metrics, /lacewing_scheduler_schedule_total\{result="parents"\} 2/);
    assert.match(metrics, /lacewing_scheduler_back_to_source_total\{reason="first_peer"\} 1/);
    assert.match(metrics, /lacewing_scheduler_peer_registrations_total\{kind="download"\} 3/);
    assert.match(metrics, /lacewing_scheduler_traffic_bytes_total\{type="peer"\} 4/);
    assert.match(metrics, /lacewing_scheduler_piece_reports_total\{result="finished"\} 2/);
  });
});

describe("TriggerDownload", () => {
  async function world() {
    const started = await setup();
    const daemons = await Promise.all(
      ["seed-a", "seed-b", "normal"].map(async (id) => {
        const daemon = await startFakeDaemon(async (request) => {
          if (id === "seed-b" && request.wait) throw new Error("origin unreachable");
          return { taskId: TASK_1, finished: request.wait };
        });
        cleanUp(daemon.close);
        await announce(started.client, id, { type: id === "normal" ? HostType.NORMAL : HostType.SEED, port: daemon.port });
        return [id, daemon] as const;
      }),
    );
    return { ...started, daemons: new Map(daemons) };
  }

  const callCounts = (daemons: Awaited<ReturnType<typeof world>>["daemons"]) => Object.fromEntries([...daemons].map(([id, d]) => [id, d.calls.length]));

  it("single_seed_peer triggers the one seed rendezvous hashing picks for the task", async () => {
    const { admin: client, daemons } = await world();
    const response = await client.triggerDownload({ download: { url: URL_1 }, scope: schedulerv1.TriggerScope.SINGLE_SEED_PEER });
    const expected = rendezvousPick(TASK_1, ["seed-a", "seed-b"]);
    assert.equal(response.taskId, TASK_1);
    assert.deepEqual(
      response.results.map((r) => [r.hostId, r.success]),
      [[expected, true]],
    );
    assert.equal(daemons.get(expected ?? "")?.calls[0]?.download?.triggered, true);
    assert.equal(callCounts(daemons)["normal"], 0);
  });

  it("all_seed_peers triggers every seed and reports each host's result when waiting", async () => {
    const { admin: client, daemons } = await world();
    const response = await client.triggerDownload({ download: { url: URL_1 }, scope: schedulerv1.TriggerScope.ALL_SEED_PEERS, wait: true });
    const results = Object.fromEntries(response.results.map((r) => [r.hostId, r.success]));
    assert.deepEqual(results, { "seed-a": true, "seed-b": false });
    assert.deepEqual(callCounts(daemons), { "seed-a": 1, "seed-b": 1, normal: 0 });
    assert.equal(daemons.get("seed-a")?.calls[0]?.wait, true);
  });

  it("all_peers triggers every alive host", async () => {
    const { admin: client, daemons } = await world();
    const response = await client.triggerDownload({ download: { url: URL_1 }, scope: schedulerv1.TriggerScope.ALL_PEERS });
    assert.deepEqual(response.results.map((r) => r.hostId).sort(), ["normal", "seed-a", "seed-b"]);
    assert.deepEqual(callCounts(daemons), { "seed-a": 1, "seed-b": 1, normal: 1 });
  });

  it("fails with failed_precondition when there is no seed to trigger", async () => {
    const { client, admin } = await setup();
    await announce(client, "h1");
    await assert.rejects(
      admin.triggerDownload({ download: { url: URL_1 }, scope: schedulerv1.TriggerScope.SINGLE_SEED_PEER }),
      (err: unknown) => err instanceof RpcError && err.kind === "failed_precondition",
    );
  });
});
