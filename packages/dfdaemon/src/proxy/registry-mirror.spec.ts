import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { link, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, afterEach, describe, it } from "node:test";
import { createLogger, pieceDigestOf, deferred, pieceLengthFor, silentLogger, taskIdOf } from "@lacewing/common";
import { originFiller, type TaskFiller } from "../download/task-filler.js";
import { TaskManager } from "../download/task-manager.js";
import { createDfdaemonMetrics, type DfdaemonMetrics } from "../metrics.js";
import { TaskStore } from "../storage/task-store.js";
import { RangeReader } from "../source/range-reader.js";
import { PieceBuffers } from "../storage/piece-buffers.js";
import { createOriginAgent } from "../source/origin-policy.js";
import { editInPlace } from "../testing/edit-in-place.js";
import { RegistryMirror } from "./registry-mirror.js";

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const CHALLENGE = 'Bearer realm="http://auth.invalid/token",service="fake-registry",scope="repository:test/img:pull"';

/** A registry serving blobs (with Range) and manifests, counting what it sends, optionally demanding a Bearer token. */
class FakeRegistry {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, { body: string; type: string }>();
  token: string | undefined;
  /** Called before a blob GET is answered; may hold it back. */
  gate: (range: { start: number } | undefined) => Promise<void> = () => Promise.resolve();
  blobBytes = 0;
  blobGets: Array<{ digest: string; range: string | undefined }> = [];
  requests: Array<{ method: string; url: string; accept: string | undefined }> = [];
  readonly #server: Server = createServer((req, res) => void this.#handle(req, res));

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests.push({ method: req.method ?? "", url: req.url ?? "", accept: req.headers.accept });
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      const body = JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] });
      res.writeHead(401, { "www-authenticate": CHALLENGE, "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    const path = (req.url ?? "").split("?")[0]!;
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (manifest) {
      const found = this.manifests.get(manifest[2]!);
      if (!found) return void res.writeHead(404).end();
      res.writeHead(200, {
        "content-type": found.type,
        "docker-content-digest": sha256(Buffer.from(found.body)),
        "content-length": Buffer.byteLength(found.body),
      });
      res.end(req.method === "HEAD" ? undefined : found.body);
      return;
    }
    const blob = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
    const bytes = blob ? this.blobs.get(blob[2]!) : undefined;
    if (!blob || !bytes) return void res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    if (req.method === "HEAD") return void res.writeHead(200, { "content-length": bytes.byteLength, "docker-content-digest": blob[2] }).end();
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    this.blobGets.push({ digest: blob[2]!, range: req.headers.range });
    await this.gate(match ? { start: Number(match[1]) } : undefined);
    if (!match) {
      this.blobBytes += bytes.byteLength;
      res.writeHead(200, { "content-length": bytes.byteLength }).end(bytes);
      return;
    }
    const start = Number(match[1]);
    const end = match[2] ? Math.min(Number(match[2]), bytes.byteLength - 1) : bytes.byteLength - 1;
    const slice = bytes.subarray(start, end + 1);
    this.blobBytes += slice.byteLength;
    res.writeHead(206, { "content-length": slice.byteLength, "content-range": `bytes ${start}-${end}/${bytes.byteLength}` }).end(slice);
  }
}

interface Fixture {
  registry: FakeRegistry;
  ns: string;
  store: TaskStore;
  tasks: TaskManager;
  metrics: DfdaemonMetrics;
  mirror: RegistryMirror;
  base: string;
  logs: () => string;
  dir: string;
}

const fixtures: Fixture[] = [];

async function setup(fill?: (origin: TaskFiller) => TaskFiller, stallTimeoutMs = 30_000): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "lacewing-mirror-"));
  const registry = new FakeRegistry();
  const ns = await registry.start();
  const lines = new PassThrough();
  let logText = "";
  lines.on("data", (d: Buffer) => (logText += d.toString()));
  const log = createLogger({ name: "dfdaemon", level: "debug", destination: lines });
  const store = new TaskStore(dir, silentLogger());
  await store.open();
  const metrics = createDfdaemonMetrics(store);
  const policy = { allowLoopback: true };
  const origin = originFiller({
    concurrency: 4,
    attempts: 2,
    log,
    dispatcher: createOriginAgent(policy),
    policy,
    buffers: new PieceBuffers(64 * MiB),
    reader: new RangeReader(policy),
  });
  const tasks = new TaskManager({ store, log, metrics, fill: fill ? fill(origin) : origin, outputTempTtlMs: 600_000 });
  const mirror = new RegistryMirror({
    tasks,
    store,
    metrics,
    log,
    route: { defaultRegistry: ns, allowedRegistries: [ns, "127.0.0.1:1"], plainHttpRegistries: [ns, "127.0.0.1:1"] },
    stallTimeoutMs,
    policy,
  });
  const port = await mirror.listen("127.0.0.1", 0);
  const fixture = { registry, ns, store, tasks, metrics, mirror, base: `http://127.0.0.1:${port}`, logs: () => logText, dir };
  fixtures.push(fixture);
  return fixture;
}

afterEach(async () => {
  for (const f of fixtures.splice(0)) {
    f.tasks.close();
    await f.mirror.close();
    await f.registry.close();
    await f.store.close();
    await rm(f.dir, { recursive: true, force: true });
  }
});

function addBlob(f: Fixture, bytes: Buffer): string {
  const digest = sha256(bytes);
  f.registry.blobs.set(digest, bytes);
  return digest;
}

function blobUrl(f: Fixture, digest: string, name = "test/img"): string {
  return `${f.base}/v2/${name}/blobs/${digest}?ns=${encodeURIComponent(f.ns)}`;
}

async function proxyResult(f: Fixture, kind: string, result: string): Promise<number> {
  const metric = await f.metrics.proxyRequests.get();
  return metric.values.find((v) => v.labels["kind"] === kind && v.labels["result"] === result)?.value ?? 0;
}

/** A raw request, so the path reaches the proxy exactly as written. */
function rawGet(base: string, path: string, method = "GET"): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("RegistryMirror blobs", () => {
  after(() => undefined);

  it("serves a blob GET through a task keyed by its digest, and a second GET from the cache without registry bytes", async () => {
    const f = await setup();
    const bytes = randomBytes(9 * MiB + 17);
    const digest = addBlob(f, bytes);
    const res = await fetch(blobUrl(f, digest));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("docker-content-digest"), digest);
    assert.equal(res.headers.get("content-length"), String(bytes.byteLength));
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
    const task = f.store.get(taskIdOf({ url: `http://${f.ns}/v2/other/name/blobs/${digest}` }));
    assert.ok(task, "the task id comes from the digest, whatever the repository");
    assert.equal(f.registry.blobBytes, bytes.byteLength + 1, "one probe byte plus the blob, once");

    f.registry.blobBytes = 0;
    const again = await fetch(blobUrl(f, digest, "another/repo"));
    assert.equal(sha256(Buffer.from(await again.arrayBuffer())), digest);
    assert.equal(f.registry.blobBytes, 0);
    assert.equal(await proxyResult(f, "blob", "p2p"), 2);
  });

  it("streams the first pieces to the client before the rest of the blob has arrived", async () => {
    const f = await setup();
    const bytes = randomBytes(12 * MiB);
    const digest = addBlob(f, bytes);
    const release = deferred<void>();
    f.registry.gate = (range) => (range !== undefined && range.start >= pieceLengthFor(bytes.byteLength) ? release.promise : Promise.resolve());
    const res = await fetch(blobUrl(f, digest));
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.byteLength > 0);
    const task = f.store.get(taskIdOf({ url: `http://${f.ns}/v2/test/img/blobs/${digest}` }))!;
    assert.equal(task.finished, false, "bytes reached the client while later pieces were still held back by the registry");
    release.resolve();
    const chunks: Buffer[] = [Buffer.from(first.value)];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
    }
    assert.equal(sha256(Buffer.concat(chunks)), digest);
  });

  it("serves a Range of a blob it has not verified yet from the registry, not from unverified pieces", async () => {
    const f = await setup();
    const bytes = randomBytes(6 * MiB + 5);
    const digest = addBlob(f, bytes);
    const res = await fetch(blobUrl(f, digest), { headers: { range: "bytes=10-19" } });
    assert.equal(res.status, 206);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes.subarray(10, 20));
    assert.deepEqual(
      f.registry.blobGets.map((get) => get.range),
      ["bytes=10-19"],
      "the client's own range went to the registry",
    );
    assert.equal(f.store.get(taskIdOf({ url: `http://${f.ns}/v2/test/img/blobs/${digest}` })), undefined, "no task was started for it");
  });

  it("honours a single Range of a verified blob with 206 and Content-Range, suffix ranges, and 416 past the end", async () => {
    const f = await setup();
    const bytes = randomBytes(6 * MiB + 5);
    const digest = addBlob(f, bytes);
    // The whole blob once: now it is stored and matched its digest.
    await (await fetch(blobUrl(f, digest))).arrayBuffer();
    const start = 4 * MiB - 3;
    const end = 4 * MiB + 10;
    const res = await fetch(blobUrl(f, digest), { headers: { range: `bytes=${start}-${end}` } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/${bytes.byteLength}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes.subarray(start, end + 1));

    const tail = await fetch(blobUrl(f, digest), { headers: { range: "bytes=-100" } });
    assert.equal(tail.status, 206);
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), bytes.subarray(bytes.byteLength - 100));

    const past = await fetch(blobUrl(f, digest), { headers: { range: `bytes=${bytes.byteLength}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get("content-range"), `bytes */${bytes.byteLength}`);
    await past.arrayBuffer();
  });

  it("passes a 401 and its Bearer challenge through unchanged, uses the client's token upstream, and never serves a cached blob to a client the registry refuses", async () => {
    const f = await setup();
    const bytes = randomBytes(5 * MiB);
    const digest = addBlob(f, bytes);
    f.registry.token = "s3cret-token-value";
    const anonymous = await fetch(blobUrl(f, digest));
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get("www-authenticate"), CHALLENGE);
    assert.match(await anonymous.text(), /UNAUTHORIZED/);

    const authorised = await fetch(blobUrl(f, digest), { headers: { authorization: "Bearer s3cret-token-value" } });
    assert.equal(authorised.status, 200);
    assert.equal(sha256(Buffer.from(await authorised.arrayBuffer())), digest);

    const again = await fetch(blobUrl(f, digest));
    assert.equal(again.status, 401, "the cached blob is not handed out without the registry's consent");
    await again.arrayBuffer();

    assert.doesNotMatch(f.logs(), /s3cret/, "the token is never logged");
    const taskDirs = await readdir(join(f.dir, "tasks"));
    for (const name of taskDirs) assert.doesNotMatch(await readFile(join(f.dir, "tasks", name, "meta.json"), "utf8"), /s3cret/, "nor stored");
  });

  it("serves a range of a cached blob whose data was edited on disk through a hard-linked output from the registry, never the edited bytes", async () => {
    const f = await setup();
    const bytes = randomBytes(5 * MiB);
    const digest = addBlob(f, bytes);
    const url = `http://${f.ns}/v2/test/img/blobs/${digest}`;
    await (await fetch(blobUrl(f, digest))).arrayBuffer();
    // The response ends with the last piece, a moment before the task is marked finished: wait for its run, which open() joins.
    const spec = { url, tag: "", application: "", filteredQueryParams: [], requestHeaders: {}, digest, pieceLength: 0, outputPath: "", timeoutMs: 0 };
    await (
      await f.tasks.open(spec)
    ).done;
    const task = f.store.get(taskIdOf({ url }))!;
    const output = join(f.dir, "output");
    assert.equal(await task.placeData((dataPath) => link(dataPath, output)), true);
    await editInPlace(output, 10, "EDITED");
    const res = await fetch(blobUrl(f, digest), { headers: { range: "bytes=0-99" } });
    assert.equal(res.status, 206);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes.subarray(0, 100));
    assert.equal(await proxyResult(f, "blob", "fallback"), 1);
  });

  it("serves the blob straight from the registry when the P2P path fails before the response starts", async () => {
    const f = await setup(() => () => Promise.reject(new Error("scheduler and peers are gone")));
    const bytes = randomBytes(3 * MiB);
    const digest = addBlob(f, bytes);
    const res = await fetch(blobUrl(f, digest));
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
    assert.equal(await proxyResult(f, "blob", "fallback"), 1);
  });

  it("continues from the registry with a Range request when the task fails midway", async () => {
    const bytes = randomBytes(10 * MiB);
    const pieceLength = pieceLengthFor(bytes.byteLength);
    const f = await setup(() => async ({ task, ledger }) => {
      await task.setLength(bytes.byteLength, pieceLength);
      const first = bytes.subarray(0, pieceLength);
      const piece = { number: 0, offset: 0, length: pieceLength, sha256: pieceDigestOf(first) };
      await task.writePiece(piece, first);
      ledger.record({ piece, source: "peer", parentId: "p", costMs: 1 });
      throw new Error("every parent left");
    });
    const digest = addBlob(f, bytes);
    const res = await fetch(blobUrl(f, digest));
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
    assert.ok(
      f.registry.blobGets.some((g) => g.range !== undefined && Number(/bytes=(\d+)-/.exec(g.range)?.[1]) >= pieceLength),
      "the rest was asked for by range",
    );
    assert.equal(await proxyResult(f, "blob", "fallback"), 1);
  });

  it("falls back to the registry when no piece lands for the stall timeout", async () => {
    const bytes = randomBytes(2 * MiB);
    const stuck = deferred<void>();
    const f = await setup(
      () =>
        async ({ task }) => {
          await task.setLength(bytes.byteLength, pieceLengthFor(bytes.byteLength));
          await stuck.promise;
        },
      200,
    );
    const digest = addBlob(f, bytes);
    const res = await fetch(blobUrl(f, digest));
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
    assert.equal(await proxyResult(f, "blob", "fallback"), 1);
    stuck.resolve();
  });

  it("cuts the transfer and drops the task when the bytes do not match the digest", async () => {
    const f = await setup();
    const bytes = randomBytes(5 * MiB);
    const digest = sha256(Buffer.from("something else"));
    f.registry.blobs.set(digest, bytes);
    const res = await fetch(blobUrl(f, digest));
    assert.equal(res.status, 200);
    await assert.rejects(res.arrayBuffer(), "the client sees a broken transfer, not a complete wrong body");
    assert.equal(f.store.get(taskIdOf({ url: `http://${f.ns}/v2/test/img/blobs/${digest}` })), undefined);
    assert.equal(await proxyResult(f, "blob", "digest_mismatch"), 1);
  });

  it("passes the registry's 404 for an unknown blob through", async () => {
    const f = await setup();
    const res = await fetch(blobUrl(f, sha256(Buffer.from("missing"))));
    assert.equal(res.status, 404);
    assert.match(await res.text(), /BLOB_UNKNOWN/);
  });
});

describe("RegistryMirror forwarding and rejections", () => {
  it("forwards manifest GET and HEAD with the client's Accept, without ns, and returns the registry's headers", async () => {
    const f = await setup();
    const body = JSON.stringify({ schemaVersion: 2 });
    f.registry.manifests.set("v1", { body, type: "application/vnd.oci.image.manifest.v1+json" });
    const accept = "application/vnd.oci.image.manifest.v1+json, */*";
    const res = await fetch(`${f.base}/v2/test/img/manifests/v1?ns=${encodeURIComponent(f.ns)}`, { headers: { accept } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/vnd.oci.image.manifest.v1+json");
    assert.equal(res.headers.get("docker-content-digest"), sha256(Buffer.from(body)));
    assert.equal(await res.text(), body);
    const head = await fetch(`${f.base}/v2/test/img/manifests/v1?ns=${encodeURIComponent(f.ns)}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.deepEqual(
      f.registry.requests.map((r) => [r.method, r.url]),
      [
        ["GET", "/v2/test/img/manifests/v1"],
        ["HEAD", "/v2/test/img/manifests/v1"],
      ],
    );
    assert.equal(f.registry.requests[0]!.accept, accept);
    assert.equal(await proxyResult(f, "manifest", "forwarded"), 2);
  });

  it("passes a manifest 401 challenge through unchanged", async () => {
    const f = await setup();
    f.registry.token = "abc";
    const res = await fetch(`${f.base}/v2/test/img/manifests/v1?ns=${encodeURIComponent(f.ns)}`, { method: "HEAD" });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), CHALLENGE);
  });

  it("answers malformed requests with a clean 4xx and an OCI error body, and keeps serving", async () => {
    const f = await setup();
    const ns = encodeURIComponent(f.ns);
    const cases: Array<[string, string, number, string]> = [
      ["GET", `/v2/test/img/blobs/sha256:not-hex?ns=${ns}`, 400, "DIGEST_INVALID"],
      ["GET", `/v2/../../etc/blobs/sha256:${"a".repeat(64)}?ns=${ns}`, 400, "NAME_INVALID"],
      ["GET", `/v2/test/%2e%2e/%2e%2e/manifests/latest?ns=${ns}`, 400, "NAME_INVALID"],
      ["GET", `/v2/test/img/manifests/latest?ns=not%20a%20host`, 400, "UNSUPPORTED"],
      ["PUT", `/v2/test/img/manifests/latest?ns=${ns}`, 405, "UNSUPPORTED"],
      ["GET", `/admin`, 404, "UNSUPPORTED"],
    ];
    for (const [method, path, status, code] of cases) {
      const res = await rawGet(f.base, path, method);
      assert.equal(res.status, status, `${method} ${path}`);
      assert.equal((JSON.parse(res.body) as { errors: Array<{ code: string }> }).errors[0]!.code, code);
    }
    assert.equal(f.registry.requests.length, 0, "nothing malformed reached the registry");
    assert.equal(await proxyResult(f, "other", "rejected"), cases.length);
    const bytes = randomBytes(1024);
    const ok = await fetch(blobUrl(f, addBlob(f, bytes)));
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
  });

  it("answers 502 with an OCI error when the registry cannot be reached", async () => {
    const f = await setup();
    const res = await fetch(`${f.base}/v2/test/img/manifests/v1?ns=127.0.0.1:1`);
    assert.equal(res.status, 502);
    assert.match(await res.text(), /UNAVAILABLE/);
  });
});
