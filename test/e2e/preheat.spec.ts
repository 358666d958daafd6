import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import knexPkg from "knex";
import { taskIdOf } from "@lacewing/common";
import { dfget, metricValue, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { startManagerProcess, type ManagerProcess } from "../helpers/manager.js";
import type { CountingProxy, TokenServer } from "../helpers/registry.js";
import {
  buildImage,
  imageDescriptors,
  pushImage,
  startRegistryPair,
  type BlobTraffic,
  type Descriptor,
  type Registry,
  type TestImage,
} from "../helpers/registry.js";
import { skipUnlessAvailable } from "../helpers/requirements.js";

const MiB = 1024 * 1024;
const commands = ["docker-registry", "skopeo", "umoci", "openssl"];
const skip = await skipUnlessAvailable("preheat e2e", { commands });
const DATABASE_URL = process.env["LACEWING_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env["LACEWING_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const productionSkip =
  skip ||
  (await skipUnlessAvailable("preheat e2e with Postgres and Redis", {
    commands,
    services: [
      { name: "Postgres", host: new URL(DATABASE_URL).hostname, port: Number(new URL(DATABASE_URL).port || 5432) },
      { name: "Redis", host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) },
    ],
  }));

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

interface DfgetJson {
  ok: boolean;
  traffic: { origin: number; peers: number; cache: number };
}

/** Registry GET bytes per blob, as one line for the test's diagnostics. */
function trafficLine(proxy: CountingProxy, blobs: Descriptor[]): string {
  return blobs
    .map((b) => {
      const t = proxy.traffic(b.digest);
      return `${b.digest.slice(7, 19)} ${b.size} B: ${t.gets} GETs ${t.heads} HEADs ${t.bytes} B`;
    })
    .join("; ");
}

describe("preheat end to end: lacewing-manager → scheduler → seed peers, then pulls from normal peers", { skip }, () => {
  let root: string;
  let tokens: TokenServer;
  let registry: Registry;
  let privateRegistry: Registry;
  let front: CountingProxy;
  let privateFront: CountingProxy;
  let scheduler: SchedulerProcess;
  let seeds: Daemon[] = [];
  let dfgetNode: Daemon;
  let mirrorNode: Daemon;
  let manager: ManagerProcess;
  let app: TestImage;
  let secret: TestImage;
  let files: TestImage;
  /** Host ids of the two seed peers, as the scheduler knows them. */
  let seedHostIds: string[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-preheat-e2e-"));
    ({ tokens, registry, privateRegistry, front, privateFront } = await startRegistryPair(root));
    [app, secret, files] = await Promise.all([
      buildImage(join(root, "images", "app"), "app", [24 * MiB, 8 * MiB, 3 * MiB, 1 * MiB]),
      buildImage(join(root, "images", "secret"), "secret", [6 * MiB, 2 * MiB]),
      buildImage(join(root, "images", "files"), "files", [5 * MiB, 2 * MiB]),
    ]);
    await Promise.all([
      pushImage(app, `${registry.host}/test/app:v1`),
      pushImage(files, `${registry.host}/test/files:v1`),
      pushImage(secret, `${privateRegistry.host}/test/secret:v1`, `puller:${tokens.users["puller"]}`),
    ]);

    scheduler = await startScheduler();
    const registries = `${front.host},${privateFront.host}`;
    const plainHttp = ["--proxy-registries", registries, "--proxy-plain-http-registries", registries];
    seeds = await Promise.all(["seed-1", "seed-2"].map((name) => startPeer(root, name, scheduler.address, ["--seed"])));
    [dfgetNode, mirrorNode] = (await Promise.all(["node-dfget", "node-mirror"].map((name) => startPeer(root, name, scheduler.address, plainHttp)))) as [
      Daemon,
      Daemon,
    ];
    await waitForHosts(scheduler.address, 4);
    manager = await startManagerProcess(["--scheduler", scheduler.address]);
  });

  after(async () => {
    await manager?.stop();
    await Promise.all([...seeds, dfgetNode, mirrorNode].map((d) => d?.stop()));
    await scheduler?.stop();
    await Promise.all([front?.close(), privateFront?.close(), registry?.stop(), privateRegistry?.stop(), tokens?.close()]);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("shows the hosts, seed peers and schedulers the scheduler knows", async () => {
    const hosts = await manager.request("GET", "/api/v1/hosts");
    assert.equal(hosts.status, 200);
    const listed = hosts.body["hosts"] as Array<{ hostname: string; type: string; scheduler: string; ip: string }>;
    assert.equal(listed.length, 4);
    assert.ok(listed.every((h) => h.scheduler === scheduler.address && h.ip === "127.0.0.1"));
    const seedPeers = await manager.request("GET", "/api/v1/seed-peers");
    assert.equal((seedPeers.body["hosts"] as Array<{ type: string }>).filter((h) => h.type === "seed").length, 2);
    assert.equal((seedPeers.body["hosts"] as unknown[]).length, 2);
    seedHostIds = (seedPeers.body["hosts"] as Array<{ id: string }>).map((h) => h.id).sort();
    const schedulers = await manager.request("GET", "/api/v1/schedulers");
    assert.deepEqual(schedulers.body["schedulers"], [{ address: scheduler.address, reachable: true, error: "", hostCount: 4 }]);
  });

  it("preheats an image with scope all_seed_peers: config and layers land on both seeds, and leave the registry once", async (t) => {
    const blobs = await blobsOf(app);
    const created = await manager.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "image", url: `http://${front.host}/v2/test/app/manifests/v1`, scope: "all_seed_peers" },
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    assert.equal(created.body["state"], "pending");
    const started = Date.now();
    const job = await manager.waitForJob(created.body["id"] as string);
    t.diagnostic(`preheat of ${blobs.length} blobs (${sizeOf(blobs)} B) took ${Date.now() - started} ms`);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.deepEqual(job.progress, { done: blobs.length, total: blobs.length });
    assert.deepEqual(
      job.tasks.map((task) => task.digest),
      blobs.map((b) => b.digest),
    );
    for (const task of job.tasks) {
      assert.equal(task.state, "succeeded");
      assert.equal(task.error, "");
      assert.equal(task.scheduler, scheduler.address);
      // The id that dfget of the blob URL and a pull through the mirror (`?ns=`, any registry host) compute.
      assert.equal(task.taskId, taskIdOf({ url: `http://${front.host}/v2/test/app/blobs/${task.digest}` }));
      assert.equal(task.taskId, taskIdOf({ url: `http://127.0.0.1:${mirrorNode.ports.proxy}/v2/test/app/blobs/${task.digest}?ns=${front.host}` }));
      assert.deepEqual(task.hosts.map((h) => h.hostId).sort(), seedHostIds, "both seed peers were triggered");
      assert.ok(task.hosts.every((h) => h.success));
    }

    t.diagnostic(`registry traffic after the preheat: ${trafficLine(front, blobs)}`);
    // Both seeds hold every blob, but the registry sent each one once (plus
    // the seed's 1-byte range probe): the seed that registered second waited
    // for the first and took the pieces from it.
    for (const blob of blobs) assertSentOnce(front, blob);
    const [fromOrigin, fromPeers] = await Promise.all([
      Promise.all(seeds.map((seed) => downloaded(seed, "origin"))),
      Promise.all(seeds.map((seed) => downloaded(seed, "peer"))),
    ]);
    t.diagnostic(`seed bytes from the registry ${fromOrigin.join(" + ")}, from the other seed ${fromPeers.join(" + ")}`);
    assert.equal(sum(fromOrigin), sizeOf(blobs));
    assert.equal(sum(fromPeers), sizeOf(blobs));
  });

  it("then dfget of each blob on a normal peer costs the registry nothing", async (t) => {
    const blobs = await blobsOf(app);
    const before = snapshot(front, blobs);
    for (const blob of blobs) {
      const out = join(root, `dfget-${blob.digest.slice(7, 19)}`);
      const result = await dfget(dfgetNode, `http://${front.host}/v2/test/app/blobs/${blob.digest}`, out);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256File(out), blob.digest);
      const report = JSON.parse(result.stdout) as DfgetJson;
      assert.deepEqual(report.traffic, { origin: 0, peers: blob.size, cache: 0 });
    }
    t.diagnostic(`registry traffic after dfget: ${trafficLine(front, blobs)}`);
    for (const blob of blobs) assert.deepEqual(front.traffic(blob.digest), before.get(blob.digest), `no registry request for ${blob.digest}`);
    assert.equal(await downloaded(dfgetNode, "origin"), 0);
  });

  it("then a mirror pull of each blob on another normal peer costs the registry no bytes", async (t) => {
    const blobs = await blobsOf(app);
    const before = snapshot(front, blobs);
    for (const blob of blobs) {
      const response = await fetch(`http://127.0.0.1:${mirrorNode.ports.proxy}/v2/test/app/blobs/${blob.digest}?ns=${front.host}`);
      assert.equal(response.status, 200);
      assert.equal(sha256Of(Buffer.from(await response.arrayBuffer())), blob.digest);
    }
    // The mirror asks the registry (HEAD, with the client's credentials)
    // whether this client may read the blob before serving it from P2P: one
    // HEAD per blob, no body.
    t.diagnostic(`registry traffic after the mirror pulls: ${trafficLine(front, blobs)}`);
    for (const blob of blobs) {
      const now = front.traffic(blob.digest);
      const was = before.get(blob.digest)!;
      assert.equal(now.bytes, was.bytes, `no registry bytes for ${blob.digest}`);
      assert.equal(now.gets, was.gets, `no registry GET for ${blob.digest}`);
    }
    assert.equal(await downloaded(mirrorNode, "origin"), 0);
    assert.equal(await downloaded(mirrorNode, "peer"), sizeOf(blobs));
    assert.equal(await metricValue(mirrorNode.ports.metrics, "lacewing_dfdaemon_proxy_requests_total", { kind: "blob", result: "p2p" }), blobs.length);
  });

  it("preheats from a registry that wants a Bearer token (username/password, scope single_seed_peer); the pulls then cost it no bytes", async (t) => {
    const blobs = await blobsOf(secret);
    const password = tokens.users["puller"]!;
    const issuedBefore = tokens.issued;
    const created = await manager.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "image", url: `http://${privateFront.host}/v2/test/secret/manifests/v1`, username: "puller", password, scope: "single_seed_peer" },
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const job = await manager.waitForJob(created.body["id"] as string);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.equal(job.args["password"], "[redacted]");
    assert.ok(tokens.issued > issuedBefore, "the manager fetched a token from the realm the registry named");
    assert.deepEqual(
      job.tasks.map((task) => task.digest),
      blobs.map((b) => b.digest),
    );
    for (const task of job.tasks) {
      assert.equal(task.hosts.length, 1, "one seed peer");
      assert.ok(seedHostIds.includes(task.hosts[0]!.hostId));
      assert.ok(task.hosts[0]!.success, task.hosts[0]!.description);
    }
    t.diagnostic(`private registry traffic after the preheat: ${trafficLine(privateFront, blobs)}`);
    for (const blob of blobs) assertSentOnce(privateFront, blob);

    const token = await pullToken("test/secret");
    const before = snapshot(privateFront, blobs);
    for (const blob of blobs) {
      const url = `http://${privateFront.host}/v2/test/secret/blobs/${blob.digest}`;
      const out = join(root, `secret-${blob.digest.slice(7, 19)}`);
      const result = await dfget(dfgetNode, url, out, "-H", `Authorization: Bearer ${token}`);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256File(out), blob.digest);
      const mirrored = await fetch(`http://127.0.0.1:${mirrorNode.ports.proxy}/v2/test/secret/blobs/${blob.digest}?ns=${privateFront.host}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(mirrored.status, 200);
      assert.equal(sha256Of(Buffer.from(await mirrored.arrayBuffer())), blob.digest);
    }
    t.diagnostic(`private registry traffic after dfget and mirror pulls: ${trafficLine(privateFront, blobs)}`);
    for (const blob of blobs) {
      assert.equal(privateFront.traffic(blob.digest).bytes, before.get(blob.digest)!.bytes, `no registry bytes for ${blob.digest}`);
      assert.equal(privateFront.traffic(blob.digest).gets, before.get(blob.digest)!.gets, `no registry GET for ${blob.digest}`);
    }
    assert.doesNotMatch(manager.output(), new RegExp(`${password}|Bearer ey`), "the manager never logs credentials");
  });

  describe("with Postgres and Redis (production mode)", { skip: productionSkip }, () => {
    const suffix = randomBytes(4).toString("hex");
    const schema = `lw_preheat_e2e_${suffix}`;
    const prefix = `lw-preheat-e2e-${suffix}`;
    const productionFlags = ["--database-url", DATABASE_URL, "--database-schema", schema, "--redis-url", REDIS_URL, "--queue-prefix", prefix];
    let production: ManagerProcess | undefined;

    after(async () => {
      await production?.stop();
      const db = knexPkg.knex({ client: "pg", connection: DATABASE_URL });
      await db.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.destroy();
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    });

    it("preheats a file list (urls[]) to every peer (all_peers); each blob leaves the registry once and is then in every node's cache", async (t) => {
      production = await startManagerProcess(["--scheduler", scheduler.address, ...productionFlags]);
      const blobs = await blobsOf(files);
      const urls = blobs.map((b) => `http://${front.host}/v2/test/files/blobs/${b.digest}`);
      const created = await production.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", urls, scope: "all_peers" } });
      assert.equal(created.status, 202, JSON.stringify(created.body));
      const jobId = created.body["id"] as string;
      const job = await production.waitForJob(jobId);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      const hostIds = ((await production.request("GET", "/api/v1/hosts")).body["hosts"] as Array<{ id: string }>).map((h) => h.id).sort();
      assert.equal(hostIds.length, 4);
      for (const task of job.tasks) {
        assert.deepEqual(task.hosts.map((h) => h.hostId).sort(), hostIds, "every dfdaemon was triggered");
        assert.ok(task.hosts.every((h) => h.success));
      }
      t.diagnostic(`registry traffic after the all_peers preheat: ${trafficLine(front, blobs)}`);
      for (const blob of blobs) assertSentOnce(front, blob);

      const before = snapshot(front, blobs);
      for (const [i, blob] of blobs.entries()) {
        const out = join(root, `files-${i}`);
        const result = await dfget(dfgetNode, urls[i]!, out);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(await sha256File(out), blob.digest);
        assert.deepEqual((JSON.parse(result.stdout) as DfgetJson).traffic, { origin: 0, peers: 0, cache: blob.size }, "already on the node");
      }
      for (const blob of blobs) assert.deepEqual(front.traffic(blob.digest), before.get(blob.digest));

      // The job is kept in Postgres across a manager restart.
      await production.stop();
      production = await startManagerProcess(["--scheduler", scheduler.address, ...productionFlags]);
      const again = await production.request("GET", `/api/v1/jobs/${jobId}`);
      assert.equal(again.status, 200);
      assert.equal(again.body["state"], "succeeded");
      assert.equal((again.body["tasks"] as unknown[]).length, blobs.length);
      const listed = await production.request("GET", "/api/v1/jobs?state=succeeded&type=preheat");
      assert.deepEqual(
        (listed.body["jobs"] as Array<{ id: string }>).map((j) => j.id),
        [jobId],
      );
    });
  });

  /** The image's config blob and layers, in the order a preheat lists them. */
  async function blobsOf(image: TestImage): Promise<Descriptor[]> {
    const { config, layers } = await imageDescriptors(image);
    return [config, ...layers];
  }

  /** A pull token from the token server, as a client logged in as `puller` gets it. */
  async function pullToken(repository: string): Promise<string> {
    const url = `${tokens.realm}?service=${tokens.service}&scope=repository:${repository}:pull`;
    const basic = Buffer.from(`puller:${tokens.users["puller"]}`).toString("base64");
    const response = await fetch(url, { headers: { authorization: `Basic ${basic}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { token: string }).token;
  }
});

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
const sizeOf = (blobs: Descriptor[]): number => sum(blobs.map((b) => b.size));
const sha256Of = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

function snapshot(proxy: CountingProxy, blobs: Descriptor[]): Map<string, BlobTraffic> {
  return new Map(blobs.map((b) => [b.digest, { ...proxy.traffic(b.digest) }]));
}

/** The registry sent the blob's bytes once: the seed's 1-byte range probe aside, never a second copy. */
function assertSentOnce(proxy: CountingProxy, blob: Descriptor): void {
  const { bytes } = proxy.traffic(blob.digest);
  assert.ok(bytes >= blob.size && bytes <= blob.size + 1, `${blob.digest} (${blob.size} B) left the registry once, not ${bytes} B`);
}

function downloaded(daemon: Daemon, source: "origin" | "peer"): Promise<number> {
  return metricValue(daemon.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source });
}
