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
import { missingCommands } from "../helpers/commands.js";
import { listening, startManagerProcess, type JobJson, type ManagerProcess } from "../helpers/manager.js";
import {
  CountingProxy,
  TokenServer,
  buildImage,
  imageDescriptors,
  pushImage,
  startRegistry,
  type Descriptor,
  type Registry,
  type TestImage,
} from "../helpers/registry.js";

const MiB = 1024 * 1024;
const missing = await missingCommands("docker-registry", "skopeo", "umoci", "openssl");
const skip = missing.length > 0 ? `needs ${missing.join(", ")} (installed by .ci/run)` : false;
const DATABASE_URL = process.env["LACEWING_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env["LACEWING_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

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
    tokens = new TokenServer();
    await tokens.start(join(root, "tokens"));
    [registry, privateRegistry] = await Promise.all([startRegistry(join(root, "registry")), startRegistry(join(root, "private-registry"), tokens)]);
    front = new CountingProxy(registry.host);
    privateFront = new CountingProxy(privateRegistry.host);
    await Promise.all([front.start(), privateFront.start()]);
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
    const plainHttp = ["--proxy-plain-http-registries", `${front.host},${privateFront.host}`];
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

  it("preheats an image with scope all_seed_peers: every layer lands on both seeds", async (t) => {
    const { layers } = await imageDescriptors(app);
    const created = await manager.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "image", url: `http://${front.host}/v2/test/app/manifests/v1`, scope: "all_seed_peers" },
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const started = Date.now();
    const job = await manager.waitForJob(created.body["id"] as string);
    t.diagnostic(`preheat of ${layers.length} layers took ${Date.now() - started} ms`);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.deepEqual(job.progress, { done: layers.length, total: layers.length });
    assert.deepEqual(
      job.tasks.map((task) => task.digest),
      layers.map((l) => l.digest),
    );
    for (const task of job.tasks) {
      assert.equal(task.state, "succeeded");
      assert.equal(task.scheduler, scheduler.address);
      // The id a pull through the mirror (?ns=) or dfget of the blob URL computes.
      assert.equal(task.taskId, taskIdOf({ url: `http://127.0.0.1:1/v2/test/app/blobs/${task.digest}?ns=${front.host}` }));
      assert.deepEqual(task.hosts.map((h) => h.hostId).sort(), seedHostIds, "both seed peers were triggered");
      assert.ok(task.hosts.every((h) => h.success));
    }
    t.diagnostic(`registry traffic after the preheat: ${trafficLine(front, layers)}`);
    // TODO: per-layer assertions once measured.
    for (const seed of seeds) {
      t.diagnostic(
        `${seed.name}: origin ${await metricValue(seed.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" })} B, peers ${await metricValue(seed.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "peer" })} B`,
      );
    }
  });

  it("then dfget of each layer on a normal peer costs the registry nothing", async (t) => {
    const { layers } = await imageDescriptors(app);
    const before = new Map(layers.map((l) => [l.digest, { ...front.traffic(l.digest) }]));
    for (const layer of layers) {
      const out = join(root, `dfget-${layer.digest.slice(7, 19)}`);
      const result = await dfget(dfgetNode, `http://${front.host}/v2/test/app/blobs/${layer.digest}`, out);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256File(out), layer.digest);
      const report = JSON.parse(result.stdout) as DfgetJson;
      assert.equal(report.traffic.origin, 0);
      assert.equal(report.traffic.peers, layer.size);
    }
    t.diagnostic(`registry traffic after dfget: ${trafficLine(front, layers)}`);
    for (const layer of layers) assert.deepEqual(front.traffic(layer.digest), before.get(layer.digest), `no registry request for ${layer.digest}`);
    assert.equal(await metricValue(dfgetNode.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" }), 0);
  });

  it("then a mirror pull of each layer on another normal peer costs the registry no bytes", async (t) => {
    const { layers } = await imageDescriptors(app);
    const before = new Map(layers.map((l) => [l.digest, { ...front.traffic(l.digest) }]));
    for (const layer of layers) {
      const response = await fetch(`http://127.0.0.1:${mirrorNode.ports.proxy}/v2/test/app/blobs/${layer.digest}?ns=${front.host}`);
      assert.equal(response.status, 200);
      const body = Buffer.from(await response.arrayBuffer());
      assert.equal(`sha256:${createHash("sha256").update(body).digest("hex")}`, layer.digest);
    }
    t.diagnostic(`registry traffic after the mirror pulls: ${trafficLine(front, layers)}`);
    for (const layer of layers) {
      const now = front.traffic(layer.digest);
      const was = before.get(layer.digest)!;
      assert.equal(now.bytes, was.bytes, `no registry bytes for ${layer.digest}`);
      assert.equal(now.gets, was.gets, `no registry GET for ${layer.digest}`);
    }
    assert.equal(await metricValue(mirrorNode.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" }), 0);
    assert.ok((await metricValue(mirrorNode.ports.metrics, "lacewing_dfdaemon_proxy_requests_total", { kind: "blob", result: "p2p" })) >= layers.length);
  });
});
