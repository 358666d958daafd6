// The container image, end to end: scripts/build-image.sh builds the
// repository's Dockerfile with buildah on a local stand-in for
// node:24-bookworm-slim (debootstrap + Node 24 from npm) and pushes it to a
// real docker-registry; containerd runs it. Node A pulls it straight from the
// registry (a cluster's first pull) and runs a scheduler, a seed peer and a
// dfdaemon from it; node B pulls the same image through node A's dfdaemon
// registry mirror (hosts.toml written by `dfdaemon containerd-config` from the
// image, as the chart's init container does), runs its own dfdaemon from the
// image it got that way and serves a dfget in a container; node C pulls the
// image through node B's mirror. The registry sends each blob once; every
// container runs as the image's unprivileged user; SIGTERM reaches Node
// through tini. Every process is on the host network, as with
// dfdaemon.hostNetwork.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { chown, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "yaml";
import { metricValue, waitForHosts } from "../helpers/cluster.js";
import { exec, type RunningProcess } from "../helpers/commands.js";
import { startContainerd, type Containerd } from "../helpers/containerd.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { ROOT, daemonPortsOf, logsFrom, portOf, type DaemonPorts, type StartLine } from "../helpers/processes.js";
import { CountingProxy, startRegistry, type Registry } from "../helpers/registry.js";
import { skipUnlessAvailable } from "../helpers/requirements.js";
import { pki } from "../helpers/pki.js";
import { TLS_FILES, type Role } from "@lacewing/common";

const MiB = 1024 * 1024;
const USER = 65532;
const skip = await skipUnlessAvailable("container image e2e", {
  root: true,
  linux: true,
  commands: ["buildah", "debootstrap", "skopeo", "npm", "containerd", "ctr", "runc", "docker-registry"],
});

interface Blob {
  digest: string;
  size: number;
}

interface ImageConfig {
  config: { Entrypoint?: string[]; Cmd?: string[]; User?: string; Labels?: Record<string, string>; Env?: string[] };
}

/** The manifest and config of `repository:tag`, read from the registry itself. */
async function inspect(registry: Registry, repository: string, tag: string): Promise<{ config: Blob; layers: Blob[]; image: ImageConfig }> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  assert.equal(res.status, 200, `manifest of ${repository}:${tag}`);
  const manifest = (await res.json()) as { config: Blob; layers: Blob[] };
  const image = (await (await fetch(`${registry.url}/v2/${repository}/blobs/${manifest.config.digest}`)).json()) as ImageConfig;
  return { config: manifest.config, layers: manifest.layers, image };
}

/** A directory the image's user can write, as a volume owned by fsGroup would be. */
async function userDir(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  await chown(path, USER, USER);
  return path;
}

/** Where a container finds its TLS directory (a Kubernetes Secret's mount, in the chart). */
const TLS_MOUNT = "/etc/lacewing/tls";

/** A TLS directory of the test's CA for `role`, readable by the image's user, bound at TLS_MOUNT. */
async function tlsBind(dir: string, role: Role, name: string): Promise<Record<string, string>> {
  await pki.writeTlsDir(dir, role, name);
  for (const path of [dir, ...Object.values(TLS_FILES).map((file) => join(dir, file))]) await chown(path, USER, USER);
  return { [dir]: TLS_MOUNT };
}

/** The fields of the line a Lacewing process in `container` logs once all its listeners are up (it starts on port 0; this says where). */
async function startLine(container: RunningProcess, message: string): Promise<StartLine> {
  const [line] = await container.waitForLines(new RegExp(`^\\{.*"msg":"${message}"`), { timeoutMs: 90_000 });
  return JSON.parse(line!) as StartLine;
}

/** Sends SIGTERM (ctr hands it to the container's PID 1) and waits up to `ms` for the exit. */
async function terminate(container: RunningProcess, ms: number): Promise<{ code: number | null; elapsedMs: number }> {
  const started = Date.now();
  const timer = setTimeout(() => container.child.kill("SIGKILL"), ms);
  await container.stop("SIGTERM");
  clearTimeout(timer);
  return { code: container.child.exitCode, elapsedMs: Date.now() - started };
}

interface Node {
  name: string;
  containerd: Containerd;
  dir: string;
}

describe("container image: built from the Dockerfile with buildah, run by containerd, pulled through its own mirror", { skip }, () => {
  let root: string;
  let registry: Registry;
  let front: CountingProxy;
  let origin: TestOrigin;
  let nodes: { a: Node; b: Node; c: Node };
  let repository: string;
  let tag: string;
  let pushed: string;
  let image: Awaited<ReturnType<typeof inspect>>;
  let buildSeconds: number;
  let buildLog: string;
  const running = new Map<string, { node: Node; container: RunningProcess }>();
  const file = randomBytesOf(24 * MiB + 123, 41);

  const suffix = randomBytes(3).toString("hex");
  /** Runs `args` in a container of `reference` on `node` the way Kubernetes runs a pod's args: after the image's entrypoint. */
  function run(node: Node, name: string, reference: string, args: string[], binds: Record<string, string> = {}): RunningProcess {
    const id = `${name}-${suffix}`;
    // Our processes log at info for their start lines; output() keeps warn and above, as the helpers' do.
    const container = node.containerd.run(reference, id, [...(image.image.config.Entrypoint ?? []), ...args], { binds, keep: logsFrom("warn") });
    running.set(id, { node, container });
    container.child.once("exit", () => running.delete(id));
    return container;
  }

  /**
   * Each daemon's data directory in its container. The chart's is
   * /var/lib/lacewing on every node, and nodes have hostnames of their own;
   * here the containers share this machine's hostname and start on port 0,
   * so the host id (hostname, advertised IP, configured peer port, data
   * directory) must differ by the directory.
   */
  const dataDir = (name: string): string => `/var/lib/lacewing/${name}`;

  function daemonArgs(name: string, scheduler: string, extra: string[] = []): string[] {
    return [
      "dfdaemon",
      "--scheduler",
      scheduler,
      "--data-dir",
      dataDir(name),
      "--socket",
      "/run/lacewing/dfdaemon.sock",
      "--advertise-ip",
      "127.0.0.1",
      "--listen-ip",
      "127.0.0.1",
      ...["--peer-port", "0", "--upload-port", "0", "--proxy-port", "0", "--metrics-port", "0"],
      "--announce-interval",
      "2s",
      "--proxy-registries",
      front.host,
      "--proxy-plain-http-registries",
      front.host,
      "--tls-dir",
      TLS_MOUNT,
      // The test's origin is on this machine's loopback, as the containers' host network is.
      "--allow-loopback-origins",
      "--log-level",
      "info",
      ...extra,
    ];
  }

  /**
   * Writes `node`'s hosts.toml for the registry, pointing at `proxyPort`, with
   * `dfdaemon containerd-config` run from the image (as the chart's init
   * container does) on node A, which has the image already.
   */
  async function writeHostsToml(node: Node, proxyPort: number): Promise<string> {
    const certs = await userDir(join(node.dir, "certs.d"));
    const args = [
      "dfdaemon",
      "containerd-config",
      "--registry",
      `http://${front.host}`,
      "--config-path",
      "/etc/containerd/certs.d",
      "--proxy-port",
      String(proxyPort),
    ];
    const writer = run(nodes.a, `${node.name}-containerd-config`, `${registry.host}/${repository}:${tag}`, args, { [certs]: "/etc/containerd/certs.d" });
    await new Promise<void>((resolve) => writer.child.once("exit", () => resolve()));
    assert.equal(writer.child.exitCode, 0, writer.output());
    const hostsToml = await readFile(join(certs, front.host, "hosts.toml"), "utf8");
    assert.match(hostsToml, new RegExp(`server = "http://${front.host}"`));
    assert.match(hostsToml, new RegExp(`\\[host\\."http://127\\.0\\.0\\.1:${proxyPort}"\\]`));
    return certs;
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-image-e2e-"));
    registry = await startRegistry(join(root, "registry"));
    front = new CountingProxy(registry.host);
    await front.start();
    origin = new TestOrigin({ "/file.bin": file, "/stuck.bin": randomBytesOf(MiB, 42) });
    await origin.start();

    const started = Date.now();
    const built = await exec("bash", [join(ROOT, "scripts/build-image.sh"), "--local-base", "--registry", registry.host, "--plain-http"]);
    buildSeconds = (Date.now() - started) / 1000;
    buildLog = built.stderr;
    assert.equal(built.code, 0, `build-image.sh: ${built.stderr}`);
    pushed = built.stdout.trim().split("\n").at(-1) ?? "";
    const match = /^[^/]+\/(.+):([^:@]+)@(sha256:[a-f0-9]{64})$/.exec(pushed);
    assert.ok(match, `build-image.sh printed ${pushed}`);
    [, repository = "", tag = ""] = match;
    image = await inspect(registry, repository, tag);

    const [a, b, c] = await Promise.all(
      ["node-a", "node-b", "node-c"].map(async (name) => {
        const dir = join(root, name);
        return { name, dir, containerd: await startContainerd(join(dir, "containerd")) };
      }),
    );
    nodes = { a: a!, b: b!, c: c! };
  });

  after(async () => {
    // Whatever a failed test left running: ctr first (it forwards the signal), then the task itself.
    await Promise.all([...running.values()].map(({ container }) => terminate(container, 15_000)));
    for (const [id, { node }] of running) await node.containerd.ctr(["tasks", "kill", "--signal", "SIGKILL", id]);
    await Promise.all(Object.values(nodes ?? {}).map((node) => node.containerd.stop()));
    await Promise.all([front?.close(), registry?.stop(), origin?.close()]);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("builds the Dockerfile with buildah on a debootstrap + Node 24 base and pushes the chart's image", async (t) => {
    t.diagnostic(`build-image.sh ${buildSeconds.toFixed(0)} s: ${buildLog.trim().split("\n").join(" | ")}`);
    const compressed = image.layers.reduce((sum, l) => sum + l.size, 0);
    t.diagnostic(`image ${pushed}: ${image.layers.length} layers, ${(compressed / MiB).toFixed(1)} MiB compressed`);
    const values = parse(await readFile(join(ROOT, "charts/lacewing/values.yaml"), "utf8")) as { image: { repository: string } };
    const chart = parse(await readFile(join(ROOT, "charts/lacewing/Chart.yaml"), "utf8")) as { appVersion: string };
    assert.equal(repository, values.image.repository.slice(values.image.repository.indexOf("/") + 1), "the chart's repository path");
    assert.equal(tag, chart.appVersion, "the chart's default tag");
    const config = image.image.config;
    assert.deepEqual(config.Entrypoint, ["/usr/bin/tini", "--"], "tini is PID 1");
    assert.equal(config.User, `${USER}:${USER}`, "unprivileged by default");
    assert.equal(config.Labels?.["org.opencontainers.image.version"], chart.appVersion);
    const head = (await exec("git", ["-C", ROOT, "rev-parse", "HEAD"])).stdout.trim();
    assert.match(config.Labels?.["org.opencontainers.image.revision"] ?? "", new RegExp(`^${head}(-dirty)?$`));
    assert.equal(config.Labels?.["org.opencontainers.image.source"], "https://github.com/lacewing/lacewing");
    assert.ok(
      config.Env?.some((e) => /^NODE_VERSION=24\./.test(e)),
      "Node 24 from the base",
    );
  });

  let scheduler: string;
  let aPorts: DaemonPorts;
  let bPorts: DaemonPorts;
  let bDirs: { run: string; out: string };
  let mirrorReference: string;

  it("runs a scheduler, a seed peer and a dfdaemon from the image on node A, as the image's user", async (t) => {
    const direct = `${registry.host}/${repository}:${tag}`;
    let startedAt = Date.now();
    const pulled = await nodes.a.containerd.pull(direct, await userDir(join(nodes.a.dir, "no-mirror")), ["--plain-http"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    t.diagnostic(`node A pulled the image from the registry in ${Date.now() - startedAt} ms`);

    startedAt = Date.now();
    // The daemons need the scheduler's address, which it says once it has bound port 0.
    const schedulerContainer = run(
      nodes.a,
      "scheduler",
      direct,
      ["lacewing-scheduler", "--listen", "127.0.0.1:0", "--metrics-port", "0", "--log-level", "info", "--tls-dir", TLS_MOUNT],
      await tlsBind(join(nodes.a.dir, "scheduler-tls"), "scheduler", "scheduler-0"),
    );
    scheduler = `127.0.0.1:${portOf(await startLine(schedulerContainer, "scheduler started"), "address")}`;
    const seed = run(nodes.a, "seed", direct, daemonArgs("seed", scheduler, ["--seed"]), {
      [await userDir(join(nodes.a.dir, "seed", "data"))]: dataDir("seed"),
      [await userDir(join(nodes.a.dir, "seed", "run"))]: "/run/lacewing",
      ...(await tlsBind(join(nodes.a.dir, "seed-tls"), "seed", "seed-0")),
    });
    const daemonA = run(nodes.a, "dfdaemon-a", direct, daemonArgs("dfdaemon-a", scheduler), {
      [await userDir(join(nodes.a.dir, "dfdaemon", "data"))]: dataDir("dfdaemon-a"),
      [await userDir(join(nodes.a.dir, "dfdaemon", "run"))]: "/run/lacewing",
      ...(await tlsBind(join(nodes.a.dir, "dfdaemon-tls"), "peer", "node-a")),
    });
    const [, aStarted] = await Promise.all([startLine(seed, "dfdaemon started"), startLine(daemonA, "dfdaemon started")]);
    aPorts = daemonPortsOf(aStarted);
    await waitForHosts(scheduler, 2);
    t.diagnostic(`three containers ready ${Date.now() - startedAt} ms after start`);
    // The pieces the seed peer stores belong to the image's user: it never ran as root.
    const owner = await exec("stat", ["-c", "%u", join(nodes.a.dir, "seed", "data", "tasks")]);
    assert.equal(owner.stdout.trim(), String(USER));
  });

  it("node B pulls the image through node A's dfdaemon mirror: the registry sends each blob once", async (t) => {
    mirrorReference = `${front.host}/${repository}:${tag}`;
    const certs = await writeHostsToml(nodes.b, aPorts.proxy);

    const started = Date.now();
    const pulled = await nodes.b.containerd.pull(mirrorReference, certs);
    assert.equal(pulled.code, 0, pulled.stderr);
    t.diagnostic(`node B pulled through the mirror in ${Date.now() - started} ms`);

    const blobs = [image.config, ...image.layers];
    t.diagnostic(
      `registry bytes per blob: ${blobs.map((b) => `${b.digest.slice(7, 19)} ${b.size} B: ${front.traffic(b.digest).bytes} B in ${front.traffic(b.digest).gets} GETs`).join("; ")}`,
    );
    for (const blob of blobs) {
      const sent = front.traffic(blob.digest).bytes;
      assert.ok(sent >= blob.size, `${blob.digest} came from the registry`);
      // The mirror's access check is a HEAD; the seed's size probe is one byte.
      assert.ok(sent <= blob.size + 1024, `${blob.digest} left the registry once (${sent} bytes for ${blob.size})`);
    }
    assert.ok(
      (await metricValue(aPorts.metrics, "lacewing_dfdaemon_proxy_requests_total", { kind: "blob", result: "p2p" })) >= image.layers.length,
      "the layers went through P2P",
    );
  });

  it("node B's dfdaemon, run from the image it pulled through Lacewing, serves a dfget container: verified, from the seed peer", async () => {
    bDirs = { run: await userDir(join(nodes.b.dir, "dfdaemon", "run")), out: await userDir(join(nodes.b.dir, "out")) };
    const daemon = run(nodes.b, "dfdaemon-b", mirrorReference, daemonArgs("dfdaemon-b", scheduler), {
      [await userDir(join(nodes.b.dir, "dfdaemon", "data"))]: dataDir("dfdaemon-b"),
      [bDirs.run]: "/run/lacewing",
      ...(await tlsBind(join(nodes.b.dir, "dfdaemon-tls"), "peer", "node-b")),
      // The daemon writes dfget's output itself, so both see the same directory at the same path (as the chart's hostPaths).
      [bDirs.out]: "/out",
    });
    bPorts = daemonPortsOf(await startLine(daemon, "dfdaemon started"));
    await waitForHosts(scheduler, 3);

    const sha256 = createHash("sha256").update(file).digest("hex");
    const dfget = run(
      nodes.b,
      "dfget",
      mirrorReference,
      ["dfget", origin.url("/file.bin"), "-O", "/out/file.bin", "--digest", `sha256:${sha256}`, "--no-progress", "--json"],
      {
        [bDirs.run]: "/run/lacewing",
        [bDirs.out]: "/out",
      },
    );
    await new Promise<void>((resolve) => dfget.child.once("exit", () => resolve()));
    assert.equal(dfget.child.exitCode, 0, dfget.output());
    const report = JSON.parse(dfget.output().trim().split("\n").at(-1) ?? "{}") as { ok: boolean; traffic: { origin: number; peers: number; cache: number } };
    assert.equal(report.ok, true);
    assert.deepEqual(report.traffic, { origin: 0, peers: file.byteLength, cache: 0 }, "every byte from the seed peer");
    assert.equal(
      createHash("sha256")
        .update(await readFile(join(bDirs.out, "file.bin")))
        .digest("hex"),
      sha256,
    );
    assert.ok(origin.bytesSent <= file.byteLength + 1, `the origin sent the file once (${origin.bytesSent} bytes)`);
  });

  it("node C pulls the image through node B's mirror: the layers come from peers, the registry sends nothing more", async (t) => {
    const before = new Map([image.config, ...image.layers].map((b) => [b.digest, front.traffic(b.digest).bytes]));
    const peerBytes = await metricValue(bPorts.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "peer" });
    const originBytes = await metricValue(bPorts.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" });
    const certs = await writeHostsToml(nodes.c, bPorts.proxy);
    const started = Date.now();
    const pulled = await nodes.c.containerd.pull(mirrorReference, certs);
    assert.equal(pulled.code, 0, pulled.stderr);
    t.diagnostic(`node C pulled through node B's mirror in ${Date.now() - started} ms`);
    for (const [digest, bytes] of before) assert.equal(front.traffic(digest).bytes, bytes, `${digest}: no more bytes from the registry`);
    const layers = image.layers.reduce((sum, l) => sum + l.size, 0);
    assert.ok(
      (await metricValue(bPorts.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "peer" })) - peerBytes >= layers,
      "node B took the layers from peers",
    );
    assert.equal(await metricValue(bPorts.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" }), originBytes);
  });

  it("SIGTERM reaches Node through tini: a stuck dfget exits at once, and every process shuts down cleanly", async (t) => {
    // dfget has no SIGTERM handler; as PID 1 without an init it would ignore the signal.
    origin.faults.stall = true;
    const requests = origin.requests;
    const dfget = run(nodes.b, "dfget-stuck", mirrorReference, ["dfget", origin.url("/stuck.bin"), "-O", "/out/stuck.bin", "--no-progress"], {
      [bDirs.run]: "/run/lacewing",
      [bDirs.out]: "/out",
    });
    const deadline = Date.now() + 60_000;
    while (origin.requests === requests && dfget.child.exitCode === null && Date.now() < deadline) await sleep(100);
    assert.ok(origin.requests > requests, `the download reached the origin: ${dfget.output()}`);
    const stuck = await terminate(dfget, 10_000);
    t.diagnostic(`stuck dfget: exit ${stuck.code} ${stuck.elapsedMs} ms after SIGTERM`);
    assert.equal(stuck.code, 128 + 15, "killed by the SIGTERM tini passed on");
    origin.faults.stall = false;

    for (const [id, { container }] of [...running]) {
      const stopped = await terminate(container, 30_000);
      t.diagnostic(`${id}: exit ${stopped.code} ${stopped.elapsedMs} ms after SIGTERM`);
      assert.equal(stopped.code, 0, `${id} shuts down cleanly: ${container.output()}`);
    }
  });
});
