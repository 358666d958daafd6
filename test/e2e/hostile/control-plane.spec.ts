// Attacks on the control plane by a stranger on the node network (no
// certificate) and by a cluster member that lies (a real peer certificate,
// as a compromised node has): fake seeds, host-id hijacks, admin calls,
// download triggers at secrets, oversized claims. Every attack is refused or
// contained, an honest download next to it completes with the origin's
// bytes, no process dies, and the counters show nothing leaked.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HostType, RpcError, createClient, dfdaemonv1, schedulerv1, type MessageInitShape } from "@lacewing/api";
import { AsyncQueue, LocalPki, MEMBER_ROLES, taskIdOf } from "@lacewing/common";
import { dfget, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../../helpers/cluster.js";
import { exec } from "../../helpers/commands.js";
import { FakeParent, deadProcesses } from "../../helpers/hostile.js";
import { TestOrigin, randomBytesOf } from "../../helpers/origin.js";
import { fetchPieceWith, outcomeOf, peerClient } from "../../helpers/peer.js";
import { schedulerClient } from "../../helpers/pki.js";
import { skipUnlessAvailable } from "../../helpers/requirements.js";

const MiB = 1024 * 1024;
const METADATA_IP = "169.254.169.254";
// The metadata address is put on lo for the test, which takes root and ip(8).
const metadataSkip = await skipUnlessAvailable("metadata-address attack", { root: true, linux: true, commands: ["ip"] });
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
const refusedBy = (code: string) => (err: unknown) => err instanceof RpcError && err.code === code;
const unreachable = (err: unknown) => err instanceof RpcError && (err.status === 14 || err.status === 4);

/** A "metadata server" with a secret, counting every request it gets. */
class SecretServer {
  hits = 0;
  readonly #server: Server = createServer((req, res) => {
    this.hits++;
    res.writeHead(200, { "content-type": "text/plain" }).end("AWS_SECRET_ACCESS_KEY=do-not-leak\n");
  });

  async start(host: string): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, host, resolve));
    return `http://${host}:${(this.#server.address() as AddressInfo).port}/latest/meta-data/credentials`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

describe("hostile: the control plane", () => {
  let root: string;
  let origin: TestOrigin;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let nodeA: Daemon;
  let nodeB: Daemon;
  let strict: Daemon;
  const fakes: FakeParent[] = [];
  const blob = randomBytesOf(12 * MiB + 17, 31);
  const secretFile = randomBytesOf(3 * MiB, 32);
  const token = "Bearer user-secret-token";

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-hostile-cp-"));
    origin = new TestOrigin({ "/blob.bin": blob, "/private.bin": secretFile, "/later.bin": blob });
    await origin.start();
    scheduler = await startScheduler();
    seed = await startPeer(root, "seed", scheduler.address, ["--seed"]);
    nodeA = await startPeer(root, "node-a", scheduler.address);
    nodeB = await startPeer(root, "node-b", scheduler.address);
    // A node that fetches from no loopback origin, as every node outside a one-machine test.
    strict = await startPeer(root, "strict", scheduler.address, [], { loopbackOrigins: false });
    await waitForHosts(scheduler.address, 4);
  });

  after(async () => {
    const dead = deadProcesses([scheduler, seed, nodeA, nodeB, strict]);
    for (const fake of fakes) await fake.close();
    for (const p of [strict, nodeB, nodeA, seed, scheduler]) await p?.stop();
    await origin?.close();
    await rm(root, { recursive: true, force: true });
    assert.deepEqual(dead, [], "no attack killed a process");
  });

  async function hostIdOf(daemon: Daemon): Promise<string> {
    const client = schedulerClient(scheduler.address);
    try {
      const { hosts } = await client.listHosts({});
      const host = hosts.find((h) => h.host?.port === daemon.ports.peer);
      assert.ok(host?.host, `the scheduler knows ${daemon.name}`);
      return host.host.id;
    } finally {
      client.close();
    }
  }

  it("a stranger without a cluster certificate reaches no scheduler, peer or upload port, nor does a certificate of another CA", async () => {
    const plain = createClient(schedulerv1.Scheduler, scheduler.address, { security: { mode: "insecure" }, serverRoles: [] });
    const foreignPki = new LocalPki();
    const foreign = createClient(schedulerv1.Scheduler, scheduler.address, { security: foreignPki.security("manager"), serverRoles: ["scheduler"] });
    const plainPeer = createClient(dfdaemonv1.DfdaemonPeer, `127.0.0.1:${nodeA.ports.peer}`, { security: { mode: "insecure" }, serverRoles: [] });
    try {
      await assert.rejects(plain.listHosts({}, { timeoutMs: 3_000 }), unreachable);
      await assert.rejects(foreign.listHosts({}, { timeoutMs: 3_000 }), unreachable);
      await assert.rejects(plainPeer.triggerDownload({ download: { url: origin.url("/blob.bin") } }, { timeoutMs: 3_000 }), unreachable);
    } finally {
      plain.close();
      foreign.close();
      plainPeer.close();
    }
    assert.equal(outcomeOf(await fetchPieceWith(nodeA.ports.upload, "a".repeat(64), 0, "guessed")), "unauthorized");
  });

  it("a fake seed gets no credential: a peer certificate cannot announce a seed, and a user's Authorization reaches only the origin", async () => {
    const fake = await FakeParent.start("mallory", scheduler.address, { sync: () => [], serve: () => undefined });
    fakes.push(fake);
    await assert.rejects(fake.announce(HostType.SEED), refusedBy("LW_ERR_PERMISSION_DENIED"));
    origin.requireHeader = ["authorization", token];
    try {
      const result = await dfget(nodeA, origin.url("/private.bin"), join(root, "private.out"), "-H", `Authorization: ${token}`);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(sha256(await readFile(join(root, "private.out"))), sha256(secretFile));
    } finally {
      origin.requireHeader = undefined;
    }
    assert.equal(fake.triggerCalls, 0, "the scheduler never triggered the fake seed");
    assert.equal(origin.rejected, 0);
  });

  it("a host id belongs to its first announcer: another certificate cannot move it, make it a seed, register for it or delete it", async () => {
    const victim = await hostIdOf(nodeA);
    const mallory = schedulerClient(scheduler.address, "peer", "mallory-2");
    const admin = schedulerClient(scheduler.address);
    try {
      const hijack = { id: victim, ip: "10.6.6.6", hostname: "evil", port: 1, downloadPort: 2, type: HostType.NORMAL, announceIntervalSeconds: 10 };
      await assert.rejects(mallory.announceHost({ host: hijack }), refusedBy("LW_ERR_PERMISSION_DENIED"));
      await assert.rejects(mallory.deleteHost({ hostId: victim }), refusedBy("LW_ERR_PERMISSION_DENIED"));
      await assert.rejects(mallory.deleteTask({ hostId: victim, taskId: taskIdOf({ url: origin.url("/blob.bin") }) }), refusedBy("LW_ERR_PERMISSION_DENIED"));
      const stream = mallory.announcePeer(
        (async function* () {
          yield {
            hostId: victim,
            taskId: taskIdOf({ url: origin.url("/blob.bin") }),
            peerId: "hijacked",
            request: { case: "register" as const, value: { download: { url: origin.url("/blob.bin") } } },
          };
        })(),
      );
      await assert.rejects(
        (async () => {
          for await (const _ of stream) void _;
        })(),
        refusedBy("LW_ERR_PERMISSION_DENIED"),
      );
      const { hosts } = await admin.listHosts({});
      const record = hosts.find((h) => h.host?.id === victim)?.host;
      assert.equal(record?.ip, "127.0.0.1", "the host did not move");
      assert.equal(record?.type, HostType.NORMAL, "nor became a seed");
    } finally {
      mallory.close();
      admin.close();
    }
    // The honest nodes carry on: node-a fetches, node-b gets it from peers.
    const first = await dfget(nodeA, origin.url("/blob.bin"), join(root, "a.out"));
    assert.equal(first.code, 0, first.stderr);
    const before = origin.bytesSent;
    const second = await dfget(nodeB, origin.url("/blob.bin"), join(root, "b.out"));
    assert.equal(second.code, 0, second.stderr);
    assert.equal(origin.bytesSent, before, "node-b's bytes came from peers");
    assert.equal(sha256(await readFile(join(root, "b.out"))), sha256(blob));
  });

  it("admin calls need the manager's certificate: a member can neither list, trigger, nor delete others' peers", async () => {
    const mallory = schedulerClient(scheduler.address, "peer", "mallory-3");
    // Someone else's peer, for mallory to try to delete.
    const owner = await FakeParent.start("owner", scheduler.address, { sync: () => [], serve: () => undefined });
    fakes.push(owner);
    const ownedTask = taskIdOf({ url: "http://unused.example/owned" });
    const answer = await owner.registerComplete(ownedTask, { contentLength: 65_536, pieceLength: 65_536 }, [Buffer.alloc(32, 1)]);
    assert.equal(answer?.case, "taskComplete");
    try {
      await assert.rejects(mallory.listHosts({}), refusedBy("LW_ERR_PERMISSION_DENIED"));
      await assert.rejects(
        mallory.triggerDownload({ download: { url: origin.url("/later.bin") }, scope: schedulerv1.TriggerScope.ALL_PEERS }),
        refusedBy("LW_ERR_PERMISSION_DENIED"),
      );
      await assert.rejects(mallory.deletePeer({ taskId: ownedTask, peerId: "owner-peer-1" }), refusedBy("LW_ERR_PERMISSION_DENIED"));
      assert.equal((await owner.scheduler.statTask({ taskId: ownedTask })).finishedPeerCount, 1, "the peer is still there");
    } finally {
      mallory.close();
    }
    // Seeds and peers may not trigger a daemon either: that is the scheduler's alone.
    const member = peerClient(nodeA.ports.peer, "seed", "mallory-4");
    try {
      await assert.rejects(member.triggerDownload({ download: { url: origin.url("/later.bin") } }), refusedBy("LW_ERR_PERMISSION_DENIED"));
    } finally {
      member.close();
    }
    const taskId = taskIdOf({ url: origin.url("/later.bin") });
    assert.ok((await readFile(join(seed.dir, "data", taskId, "meta.json")).catch(() => undefined)) === undefined, "nothing was fetched");
  });

  it("the scheduler bounds what clients claim: giant ids, endless announce intervals and a 3,000,000-piece cache cost nothing lasting", async () => {
    const mallory = schedulerClient(scheduler.address, "peer", "mallory-5");
    const admin = schedulerClient(scheduler.address);
    try {
      const host = { ip: "127.0.0.1", hostname: "m", port: 1, downloadPort: 2, type: HostType.NORMAL };
      await assert.rejects(
        mallory.announceHost({ host: { ...host, id: "x".repeat(12 * MiB), announceIntervalSeconds: 10 } }),
        (err: unknown) => err instanceof RpcError,
      );
      await mallory.announceHost({ host: { ...host, id: "forever", announceIntervalSeconds: 4_294_967_295 } });
      const { hosts } = await admin.listHosts({});
      assert.equal(hosts.find((h) => h.host?.id === "forever")?.host?.announceIntervalSeconds, 300, "clamped: it expires like any host");
      const huge = await FakeParent.start("mallory-6", scheduler.address, { sync: () => [], serve: () => undefined });
      fakes.push(huge);
      const started = Date.now();
      await assert.rejects(
        huge.registerComplete(taskIdOf({ url: "http://x/huge" }), { contentLength: 3_000_000 * 65_536, pieceLength: 65_536 }, []),
        (err: unknown) => err instanceof RpcError && /more than 131072 pieces/.test(err.message),
      );
      assert.ok(Date.now() - started < 1_000, "refused at once");
    } finally {
      mallory.close();
      admin.close();
    }
  });

  it("no one makes a node fetch a loopback or metadata secret: not a stranger, not a member through the scheduler, not a redirect", async (t) => {
    const secrets = new SecretServer();
    const loopbackSecret = await secrets.start("127.0.0.1");
    t.after(() => secrets.close());
    // Through a seed: a member registers the secret's URL with the scheduler, which triggers its seed; the seed refuses it.
    const strictSeedScheduler = await startScheduler(["--schedule-timeout", "2s"]);
    const strictSeed = await startPeer(root, "strict-seed", strictSeedScheduler.address, ["--seed"], { loopbackOrigins: false });
    t.after(async () => {
      const dead = deadProcesses([strictSeedScheduler, strictSeed]);
      for (const p of [strictSeed, strictSeedScheduler]) await p.stop();
      assert.deepEqual(dead, []);
    });
    await waitForHosts(strictSeedScheduler.address, 1);
    const member = await FakeParent.start("mallory-7", strictSeedScheduler.address, { sync: () => [], serve: () => undefined });
    fakes.push(member);
    const requests = new AsyncQueue<MessageInitShape<typeof schedulerv1.AnnouncePeerRequestSchema>>();
    const answers = member.scheduler.announcePeer(requests)[Symbol.asyncIterator]();
    requests.push({
      hostId: member.hostId,
      taskId: taskIdOf({ url: loopbackSecret }),
      peerId: "mallory-7-peer",
      request: { case: "register", value: { download: { url: loopbackSecret, requestHeaders: { "metadata-flavor": "Google" } } } },
    });
    let answer = await answers.next();
    while (answer.done !== true && answer.value.response.case === "taskUpdate") answer = await answers.next();
    requests.end();
    assert.equal(answer.done === true ? undefined : answer.value.response.case, "needBackToSource", "no seed fetched it for the member");
    // And a node asked directly refuses too, with an error that says why.
    const direct = await dfget(strict, loopbackSecret, join(root, "stolen-2"));
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /loopback address \(allow loopback origins with --allow-loopback-origins\)/);
    assert.equal(secrets.hits, 0, "the secret server was never asked");
    for (const member of MEMBER_ROLES) {
      const client = peerClient(strict.ports.peer, member, `trigger-${member}`);
      try {
        await assert.rejects(client.triggerDownload({ download: { url: loopbackSecret }, wait: true }), refusedBy("LW_ERR_PERMISSION_DENIED"));
      } finally {
        client.close();
      }
    }
    assert.equal(secrets.hits, 0);
  });

  it("a redirect to the cloud metadata address is refused even on a node that may fetch loopback origins", { skip: metadataSkip }, async (t) => {
    const added = await exec("ip", ["addr", "add", `${METADATA_IP}/32`, "dev", "lo"]);
    t.after(async () => {
      if (added.code === 0) await exec("ip", ["addr", "del", `${METADATA_IP}/32`, "dev", "lo"]);
    });
    assert.ok(added.code === 0 || /File exists/.test(added.stderr), added.stderr);
    const metadata = new SecretServer();
    const secretUrl = await metadata.start(METADATA_IP);
    t.after(() => metadata.close());
    const redirector = createServer((_req, res) => res.writeHead(302, { location: secretUrl }).end());
    await new Promise<void>((resolve) => redirector.listen(0, "127.0.0.1", resolve));
    t.after(() => new Promise<void>((resolve) => redirector.close(() => resolve())));
    const redirectUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/innocent.bin`;
    for (const url of [redirectUrl, secretUrl]) {
      const result = await dfget(nodeA, url, join(root, "meta.out"), "-H", "Metadata-Flavor: Google");
      assert.notEqual(result.code, 0, url);
      assert.match(result.stderr, /link-local, metadata, unspecified or multicast address/);
    }
    assert.equal(metadata.hits, 0, "the metadata server was never asked");
  });
});
