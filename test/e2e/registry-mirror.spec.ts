import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { request as httpRequest } from "node:http";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { metricValue, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { startContainerd, type Containerd } from "../helpers/containerd.js";
import { BIN, runCommand } from "../helpers/processes.js";
import { skipUnlessAvailable } from "../helpers/requirements.js";
import type { CountingProxy, TokenServer } from "../helpers/registry.js";
import { buildImage, imageDescriptors, pushImage, startRegistryPair, type Descriptor, type Registry, type TestImage } from "../helpers/registry.js";

const MiB = 1024 * 1024;
const skip = await skipUnlessAvailable("registry mirror e2e", {
  root: true,
  linux: true,
  commands: ["containerd", "ctr", "docker-registry", "skopeo", "umoci", "openssl"],
});

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Every task's meta.json in a daemon's data directory. */
async function taskMetas(daemon: Daemon): Promise<string[]> {
  const tasks = join(daemon.dir, "data", "tasks");
  const names = await readdir(tasks).catch(() => [] as string[]);
  return Promise.all(names.map((name) => readFile(join(tasks, name, "meta.json"), "utf8")));
}

/** The status of a GET sent with its path exactly as written (fetch would normalise dot segments). */
function rawRequest(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

interface Node {
  daemon: Daemon;
  containerd: Containerd;
  hostsDir: string;
}

describe("registry mirror: containerd pulls through dfdaemon with P2P", { skip }, () => {
  let root: string;
  let registry: Registry;
  let front: CountingProxy;
  let tokens: TokenServer;
  let privateRegistry: Registry;
  let privateFront: CountingProxy;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let nodes: Node[] = [];
  let app: TestImage;
  let spare: TestImage;
  let secret: TestImage;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-mirror-e2e-"));
    ({ tokens, registry, privateRegistry, front, privateFront } = await startRegistryPair(root));
    [app, spare, secret] = await Promise.all([
      buildImage(join(root, "images", "app"), "app", [72 * MiB, 8 * MiB, 1 * MiB]),
      buildImage(join(root, "images", "spare"), "spare", [6 * MiB, 2 * MiB]),
      buildImage(join(root, "images", "secret"), "secret", [5 * MiB, 3 * MiB]),
    ]);
    const credentials = `puller:${tokens.users["puller"]}`;
    await Promise.all([
      pushImage(app, `${registry.host}/test/app:v1`),
      pushImage(spare, `${registry.host}/test/spare:v1`),
      pushImage(secret, `${privateRegistry.host}/test/secret:v1`, credentials),
    ]);

    scheduler = await startScheduler();
    // Debug logs, so the check that no token is ever logged has something to read.
    const registries = `${front.host},${privateFront.host}`;
    const plainHttp = ["--proxy-registries", registries, "--proxy-plain-http-registries", registries, "--log-level", "debug"];
    seed = await startPeer(root, "seed", scheduler.address, ["--seed", ...plainHttp]);
    const daemons = await Promise.all(["node-1", "node-2"].map((name) => startPeer(root, name, scheduler.address, plainHttp)));
    await waitForHosts(scheduler.address, 3);
    nodes = await Promise.all(
      daemons.map(async (daemon) => {
        const hostsDir = join(daemon.dir, "certs.d");
        const written = await runCommand(BIN.dfdaemon, [
          "containerd-config",
          "--registry",
          `http://${front.host},http://${privateFront.host}`,
          "--config-path",
          hostsDir,
          "--proxy-port",
          String(daemon.ports.proxy),
        ]);
        assert.equal(written.code, 0, written.stderr);
        return { daemon, containerd: await startContainerd(join(daemon.dir, "containerd")), hostsDir };
      }),
    );
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.containerd.stop()));
    await Promise.all([seed, ...nodes.map((n) => n.daemon)].map((d) => d?.stop()));
    await scheduler?.stop();
    await Promise.all([front?.close(), privateFront?.close(), registry?.stop(), privateRegistry?.stop(), tokens?.close()]);
    if (root) await rm(root, { recursive: true, force: true });
  });

  async function assertUnpacked(node: Node, image: TestImage): Promise<void> {
    for (const file of image.files) {
      const found = await node.containerd.findInSnapshots(file.path);
      assert.ok(found, `${file.path} unpacked on ${node.daemon.name}`);
      assert.equal(await sha256File(found), file.sha256, `${file.path} has the pushed bytes`);
    }
  }

  function layerTraffic(proxy: CountingProxy, layers: Descriptor[]): string {
    return layers
      .map(
        (l) =>
          `${l.digest.slice(7, 19)} ${(l.size / MiB).toFixed(1)} MiB: ${proxy.traffic(l.digest).gets} GETs, ${proxy.traffic(l.digest).heads} HEADs, ${proxy.traffic(l.digest).bytes} bytes`,
      )
      .join("; ");
  }

  it("pulls on two nodes; the registry sends each layer once and node 2's layers come from peers", async (t) => {
    const { layers } = await imageDescriptors(app);
    assert.ok(
      layers.some((l) => l.size >= 64 * MiB),
      "one layer is at least 64 MiB",
    );
    const reference = `${front.host}/test/app:v1`;
    const [first, second] = nodes as [Node, Node];

    let started = Date.now();
    const pulled1 = await first.containerd.pull(reference, first.hostsDir);
    assert.equal(pulled1.code, 0, pulled1.stderr);
    t.diagnostic(`node-1 pull ${Date.now() - started} ms`);
    await assertUnpacked(first, app);

    started = Date.now();
    const pulled2 = await second.containerd.pull(reference, second.hostsDir);
    assert.equal(pulled2.code, 0, pulled2.stderr);
    t.diagnostic(`node-2 pull ${Date.now() - started} ms`);
    await assertUnpacked(second, app);

    t.diagnostic(`registry traffic per layer: ${layerTraffic(front, layers)}`);
    for (const layer of layers) {
      const traffic = front.traffic(layer.digest);
      assert.ok(traffic.bytes >= layer.size, `layer ${layer.digest} was fetched from the registry`);
      assert.ok(traffic.bytes <= layer.size + 1024, `layer ${layer.digest} left the registry once (${traffic.bytes} bytes for ${layer.size})`);
    }
    const total = layers.reduce((sum, l) => sum + l.size, 0);
    const fromPeers = await metricValue(second.daemon.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "peer" });
    const fromOrigin = await metricValue(second.daemon.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" });
    t.diagnostic(`node-2 bytes from peers ${fromPeers}, from origin ${fromOrigin}, layers ${total}`);
    assert.ok(fromPeers >= total, "node 2's layers came from peers");
    assert.equal(fromOrigin, 0);
    assert.ok((await metricValue(second.daemon.ports.metrics, "lacewing_dfdaemon_proxy_requests_total", { kind: "blob", result: "p2p" })) >= layers.length);
  });

  it("honours a Range request on a layer and answers malformed requests with a clean 4xx", async () => {
    const node = nodes[1]!;
    const proxy = `http://127.0.0.1:${node.daemon.ports.proxy}`;
    const { layers } = await imageDescriptors(app);
    const layer = layers[0]!;
    const blob = await readFile(join(app.layout, "blobs", ...layer.digest.split(":")));
    const ranged = await fetch(`${proxy}/v2/test/app/blobs/${layer.digest}?ns=${front.host}`, { headers: { range: "bytes=5000000-5999999" } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get("content-range"), `bytes 5000000-5999999/${layer.size}`);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), blob.subarray(5_000_000, 6_000_000));

    for (const [path, status] of [
      [`/v2/test/app/blobs/sha256:1234?ns=${front.host}`, 400],
      [`/v2/test/../../../etc/blobs/${layer.digest}?ns=${front.host}`, 400],
      [`/v2/test/%2e%2e/app/manifests/v1?ns=${front.host}`, 400],
      [`/v2/test/app/manifests/v1?ns=no%20such%20host`, 400],
    ] as const) {
      const res = await rawRequest(node.daemon.ports.proxy, path);
      assert.equal(res, status, path);
    }
    assert.equal(node.daemon.child.exitCode, null, "the daemon is still running");
    const manifest = await fetch(`${proxy}/v2/test/app/manifests/v1?ns=${front.host}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(manifest.status, 200);
    await manifest.arrayBuffer();
  });

  it("pulls from a registry that requires a Bearer token: the 401 challenge reaches containerd, which logs in through the mirror", async (t) => {
    const [first, second] = nodes as [Node, Node];
    const { layers } = await imageDescriptors(secret);
    const anonymous = await fetch(`http://127.0.0.1:${first.daemon.ports.proxy}/v2/test/secret/blobs/${layers[0]!.digest}?ns=${privateFront.host}`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("www-authenticate") ?? "", new RegExp(`^Bearer realm="${tokens.realm}",service="${tokens.service}"`));
    await anonymous.arrayBuffer();

    const reference = `${privateFront.host}/test/secret:v1`;
    const user = ["--user", `puller:${tokens.users["puller"]}`];
    const denied = await first.containerd.pull(reference, first.hostsDir);
    assert.notEqual(denied.code, 0, "no credentials, no image");
    const issuedBefore = tokens.issued;
    for (const node of [first, second]) {
      const pulled = await node.containerd.pull(reference, node.hostsDir, user);
      assert.equal(pulled.code, 0, pulled.stderr);
      await assertUnpacked(node, secret);
    }
    assert.ok(tokens.issued > issuedBefore, "containerd fetched tokens from the realm the registry named");
    for (const daemon of [seed, first.daemon, second.daemon]) {
      assert.doesNotMatch(daemon.output(), /Bearer|eyJ/, `${daemon.name} never logs a token`);
      for (const meta of await taskMetas(daemon)) assert.doesNotMatch(meta, /Bearer|eyJ|authorization/i, `${daemon.name} never stores a token`);
    }
    t.diagnostic(`private registry traffic per layer: ${layerTraffic(privateFront, layers)}`);
    for (const layer of layers) assert.ok(privateFront.traffic(layer.digest).bytes <= 2 * layer.size + 1024);
  });

  it("still pulls with the scheduler and the seed peer stopped: the blobs come from the registry", async () => {
    await scheduler.stop();
    await seed.stop();
    const { layers } = await imageDescriptors(spare);
    const node = nodes[1]!;
    const pulled = await node.containerd.pull(`${front.host}/test/spare:v1`, node.hostsDir);
    assert.equal(pulled.code, 0, pulled.stderr);
    await assertUnpacked(node, spare);
    for (const layer of layers) assert.ok(front.traffic(layer.digest).bytes >= layer.size, "served by the registry");
  });

  it("still pulls with the node's dfdaemon down: containerd falls back to the server in hosts.toml", async () => {
    const node = nodes[0]!;
    await node.daemon.stop();
    const pulled = await node.containerd.pull(`${front.host}/test/spare:v1`, node.hostsDir);
    assert.equal(pulled.code, 0, pulled.stderr);
    await assertUnpacked(node, spare);
  });
});
