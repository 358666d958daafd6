import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HostType, RpcError, schedulerv1 } from "@lacewing/api";
import { taskIdOf } from "@lacewing/common";
import { hostInfo } from "../testing/fixtures.js";
import {
  PeerStream,
  PIECE_LENGTH,
  announce,
  clientAs,
  parentIdsOf,
  pieceSha256,
  startFakeDaemon,
  startScheduler,
  TASK_1,
  until,
  URL_1,
  cleanupAfterEach,
  type SchedulerClient,
} from "../testing/harness.js";

const cleanUp = cleanupAfterEach();

async function setup(...args: Parameters<typeof startScheduler>) {
  const started = await startScheduler(...args);
  cleanUp(started.close);
  const as = (...rest: Parameters<typeof clientAs> extends [string, ...infer R] ? R : never): SchedulerClient => {
    const client = clientAs(started.scheduler.address, ...rest);
    cleanUp(() => client.close());
    return client;
  };
  return { ...started, as };
}

function stream(...args: ConstructorParameters<typeof PeerStream>): PeerStream {
  const peer = new PeerStream(...args);
  cleanUp(() => peer.requests.end());
  return peer;
}

const denied =
  (code = "LW_ERR_PERMISSION_DENIED") =>
  (err: unknown) =>
    err instanceof RpcError && err.code === code;
const invalid = (pattern: RegExp) => (err: unknown) => err instanceof RpcError && err.kind === "invalid_argument" && pattern.test(err.message);

/** A back-to-source peer reports the length (4 pieces) and pieces `from`…`to`-1 with `digest`. */
function originPieces(source: PeerStream, to: number, digest = pieceSha256, from = 0): void {
  source.send({ case: "taskInfo", value: { info: { contentLength: BigInt(4 * PIECE_LENGTH), pieceLength: BigInt(PIECE_LENGTH) } } });
  for (let number = from; number < to; number++)
    source.send({ case: "pieceFinished", value: { piece: { number, length: BigInt(PIECE_LENGTH), sha256: digest(number) } } });
}

describe("who may call the scheduler", () => {
  it("takes host announcements only from seed and peer certificates, and a seed only from a seed certificate", async () => {
    const { as } = await setup();
    await assert.rejects(as("manager").announceHost({ host: hostInfo("h1") }), denied());
    await assert.rejects(as("scheduler").announceHost({ host: hostInfo("h1") }), denied());
    const peer = as("peer", "node-1");
    await assert.rejects(
      peer.announceHost({ host: hostInfo("fake-seed", { type: HostType.SEED }) }),
      (err: unknown) => denied()(err) && /only a seed/.test((err as Error).message),
    );
    assert.equal((await peer.announceHost({ host: hostInfo("h1") })).newHost, true);
    assert.equal((await as("seed", "seed-0").announceHost({ host: hostInfo("seed-0", { type: HostType.SEED }) })).newHost, true);
  });

  it("binds a host id to the certificate that first announced it: another one cannot move it, register for it or delete it", async () => {
    const { as, admin, scheduler } = await setup();
    const owner = as("peer", "node-a");
    const thief = as("peer", "node-b");
    await owner.announceHost({ host: hostInfo("h1", { ip: "10.0.0.1" }) });
    await assert.rejects(thief.announceHost({ host: hostInfo("h1", { ip: "10.6.6.6" }) }), denied());
    assert.equal(scheduler.registry.hosts.get("h1")?.info.ip, "10.0.0.1");
    const hijack = stream(thief, "h1", "p1");
    hijack.register();
    await assert.rejects(hijack.next(), denied());
    await assert.rejects(thief.deleteHost({ hostId: "h1" }), denied());
    await assert.rejects(thief.deleteTask({ hostId: "h1", taskId: TASK_1 }), denied());
    assert.ok(scheduler.registry.hosts.has("h1"));
    await owner.announceHost({ host: hostInfo("h1", { ip: "10.0.0.1" }) });
    await admin.deleteHost({ hostId: "h1" });
    assert.ok(!scheduler.registry.hosts.has("h1"), "the manager may delete any host");
  });

  it("takes admin calls (list hosts and tasks, flows, trigger) only from the manager", async () => {
    const { client, admin } = await setup();
    await announce(client, "h1");
    await assert.rejects(client.listHosts({}), denied());
    await assert.rejects(client.listTasks({}), denied());
    await assert.rejects(client.getTaskFlow({ taskId: TASK_1 }), denied());
    await assert.rejects(client.triggerDownload({ download: { url: URL_1 }, scope: schedulerv1.TriggerScope.ALL_PEERS }), denied());
    assert.equal((await admin.listHosts({})).hosts.length, 1);
  });

  it("hands a download's credentials to a seed trigger only when the seed proves it is a seed", async () => {
    const { client, admin } = await setup();
    const impostor = await startFakeDaemon(async () => ({ taskId: TASK_1, finished: false }), "peer");
    cleanUp(impostor.close);
    await announce(client, "seed", { type: HostType.SEED, port: impostor.port });
    await announce(client, "h1");
    const child = stream(client, "h1", "child");
    child.register({ url: URL_1, requestHeaders: { authorization: "Bearer top-secret" } });
    assert.equal((await child.next()).response.case, "needBackToSource", "the trigger fails and the child fetches itself");
    const response = await admin.triggerDownload({ download: { url: URL_1 }, scope: schedulerv1.TriggerScope.SINGLE_SEED_PEER, wait: true });
    assert.equal(response.results[0]?.success, false);
    assert.equal(impostor.calls.length, 0, "no call reached a daemon whose certificate is not a seed's");
  });
});

describe("bounds on what clients say", () => {
  it("refuses oversized ids, addresses that are not IPs and bad ports, and clamps the announce interval", async () => {
    const { client, scheduler } = await setup();
    await assert.rejects(client.announceHost({ host: hostInfo("x".repeat(257)) }), invalid(/host\.id is longer than 256/));
    await assert.rejects(client.announceHost({ host: hostInfo("h1", { ip: "not-an-ip" }) }), invalid(/host\.ip must be an IP/));
    await assert.rejects(client.announceHost({ host: hostInfo("h1", { port: 0 }) }), invalid(/host\.port/));
    await client.announceHost({ host: hostInfo("forever", { announceIntervalSeconds: 4_294_967_295 }) });
    assert.equal(scheduler.registry.hosts.get("forever")?.info.announceIntervalSeconds, 300);
  });

  it("refuses piece numbers past the end, a task id that is not the download's, and a complete registration claiming millions of pieces", async () => {
    const { client } = await setup();
    await announce(client, "h1");
    const wrongTask = stream(client, "h1", "p0", taskIdOf({ url: "http://other/file" }));
    wrongTask.register({ url: URL_1 });
    await assert.rejects(wrongTask.next(), invalid(/task_id is not the task id/));
    const source = stream(client, "h1", "p1");
    source.register();
    await source.next();
    source.send({ case: "backToSourceStarted", value: {} });
    originPieces(source, 1);
    source.send({ case: "pieceFinished", value: { piece: { number: 4_000_000, length: 1n, sha256: pieceSha256(0) } } });
    await assert.rejects(source.next(), invalid(/4000000 is not a piece of this task \(it has 4\)/));
    const greedy = stream(client, "h1", "p2", taskIdOf({ url: "http://origin.test/huge" }));
    const started = Date.now();
    greedy.send({
      case: "register",
      value: {
        download: { url: "http://origin.test/huge" },
        complete: true,
        taskInfo: { contentLength: 3_000_000n * 65_536n, pieceLength: 65_536n, totalPieces: 3_000_000 },
      },
    });
    await assert.rejects(greedy.next(), invalid(/more than 131072 pieces/));
    assert.ok(Date.now() - started < 1_000);
  });

  it("pages ListHosts", async () => {
    const { client, admin } = await setup();
    for (let i = 0; i < 5; i++) await announce(client, `h${i}`);
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await admin.listHosts({ pageSize: 2, pageToken });
      seen.push(...page.hosts.map((h) => h.host?.id ?? ""));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    assert.deepEqual(seen, ["h0", "h1", "h2", "h3", "h4"]);
    assert.equal(pages, 3);
  });

  it("limits the peers one host registers and the hosts one certificate announces", async () => {
    const { client, as } = await setup({ maxPeersPerHost: 2, maxHostsPerOwner: 2 });
    await announce(client, "h1");
    for (const [i, url] of ["http://o/a", "http://o/b"].entries()) {
      const peer = stream(client, "h1", `p${i}`, taskIdOf({ url }));
      peer.register({ url });
      await peer.next();
    }
    const third = stream(client, "h1", "p3", taskIdOf({ url: "http://o/c" }));
    third.register({ url: "http://o/c" });
    await assert.rejects(third.next(), denied("LW_ERR_TOO_MANY_PEERS"));
    const node = as("peer", "node-x");
    await node.announceHost({ host: hostInfo("a") });
    await node.announceHost({ host: hostInfo("b") });
    await assert.rejects(node.announceHost({ host: hostInfo("c") }), denied("LW_ERR_TOO_MANY_HOSTS"));
  });
});

describe("content no peer can choose", () => {
  it("tells a registered child the length and each piece digest the origin fetch reported, as they land", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h1", "h2", "h3"]) await announce(client, id);
    const source = stream(client, "h1", "source");
    source.register();
    assert.equal((await source.next()).response.case, "needBackToSource");
    source.send({ case: "backToSourceStarted", value: {} });
    originPieces(source, 2);
    await until(() => scheduler.registry.tasks.get(TASK_1)?.pieceDigests.size === 2);
    const child = stream(client, "h2", "child");
    child.register();
    assert.deepEqual(parentIdsOf(await child.next()), ["source"]);
    // What was known at registration came first, with the length.
    assert.equal(child.updates[0]?.taskInfo?.contentLength, BigInt(4 * PIECE_LENGTH));
    assert.deepEqual([...child.digests().keys()].sort(), [0, 1]);
    originPieces(source, 4, pieceSha256, 2);
    while (!child.digests().has(3)) {
      const update = await child.nextMessage();
      assert.equal(update.response.case, "taskUpdate");
      if (update.response.case === "taskUpdate") child.updates.push(update.response.value);
    }
    assert.deepEqual(child.digests().get(3), pieceSha256(3));
  });

  it("keeps the first length and digest from the origin: a disagreeing fetch is an error, never an overwrite, and its peer is not handed out", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h1", "h2", "h3"]) await announce(client, id);
    const first = stream(client, "h1", "first");
    first.register({ url: URL_1, triggered: true });
    await first.next();
    first.send({ case: "backToSourceStarted", value: {} });
    originPieces(first, 1);
    await until(() => scheduler.registry.tasks.get(TASK_1)?.pieceDigests.size === 1);
    // A child's own idea of the length is not taken at all.
    const child = stream(client, "h3", "child");
    child.register();
    await child.next();
    child.send({ case: "taskInfo", value: { info: { contentLength: 1n, pieceLength: 65_536n } } });
    const liar = stream(client, "h2", "liar");
    liar.register();
    await liar.next();
    liar.send({ case: "backToSourceStarted", value: {} });
    liar.send({ case: "pieceFinished", value: { piece: { number: 0, length: BigInt(PIECE_LENGTH), sha256: Buffer.alloc(32, 7) } } });
    await until(() => scheduler.registry.tasks.get(TASK_1)?.excludedParents.has("liar") === true);
    liar.send({ case: "taskInfo", value: { info: { contentLength: 2n * BigInt(PIECE_LENGTH), pieceLength: BigInt(PIECE_LENGTH) } } });
    await assert.rejects(liar.next(), (err: unknown) => err instanceof RpcError && err.code === "LW_ERR_TASK_MISMATCH");
    const task = scheduler.registry.tasks.get(TASK_1)!;
    assert.equal(task.contentLength, 4 * PIECE_LENGTH);
    assert.deepEqual(task.pieceDigests.get(0), pieceSha256(0));
  });

  it("does not take a piece a child says it got from a parent when its digest is not the scheduler's", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h1", "h2"]) await announce(client, id);
    const source = stream(client, "h1", "source");
    source.register();
    await source.next();
    source.send({ case: "backToSourceStarted", value: {} });
    originPieces(source, 1);
    const child = stream(client, "h2", "child");
    child.register();
    await child.next();
    child.send({ case: "pieceFinished", value: { piece: { number: 0, length: 1n, parentId: "source", sha256: Buffer.alloc(32) } } });
    child.send({ case: "pieceFinished", value: { piece: { number: 1, length: 1n, parentId: "source", sha256: pieceSha256(1) } } });
    child.send({ case: "reschedule", value: { refresh: true } });
    await child.next();
    assert.equal(scheduler.registry.tasks.get(TASK_1)?.peers.get("child")?.pieces.size, 0);
  });

  it("after a whole-task digest mismatch stops handing out the copies, sends the next peer to the origin, and refuses the bad copy from the cache", async () => {
    const { client, scheduler } = await setup();
    for (const id of ["h1", "h2", "h3", "h4"]) await announce(client, id);
    await stream(client, "h1", "poisoner").finishAsParent(scheduler, 4 * PIECE_LENGTH);
    const victim = stream(client, "h2", "victim");
    victim.register({ url: URL_1, digest: `sha256:${"a".repeat(64)}` });
    assert.deepEqual(parentIdsOf(await victim.next()), ["poisoner"]);
    victim.send({
      case: "peerFailed",
      value: { description: "digest mismatch", digestMismatch: true, expectedDigest: `sha256:${"a".repeat(64)}`, actualDigest: `sha256:${"b".repeat(64)}` },
    });
    await until(() => scheduler.registry.tasks.get(TASK_1)?.tainted === true);
    const next = stream(client, "h3", "next");
    next.register();
    assert.equal((await next.next()).response.case, "needBackToSource");
    assert.match(await scheduler.metrics.registry.metrics(), /lacewing_scheduler_back_to_source_total\{reason="tainted"\} 1/);
    const recached = stream(client, "h1", "poisoner-again");
    recached.send({
      case: "register",
      value: {
        download: { url: URL_1 },
        complete: true,
        taskInfo: { contentLength: BigInt(4 * PIECE_LENGTH), pieceLength: BigInt(PIECE_LENGTH), totalPieces: 4 },
        pieceSha256: [0, 1, 2, 3].map(pieceSha256),
      },
    });
    await assert.rejects(recached.next(), (err: unknown) => err instanceof RpcError && err.code === "LW_ERR_TASK_TAINTED");
    // Once the host dropped its copy it may hold the task again.
    await client.deleteTask({ hostId: "h1", taskId: TASK_1 });
    assert.ok(!scheduler.registry.tasks.get(TASK_1)?.taintedHosts.has("h1"));
  });
});
