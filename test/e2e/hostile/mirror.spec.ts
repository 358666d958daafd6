// Attacks through the registry mirror: an open proxy, an `ns` swap to get
// a cached private layer without the registry's consent, a raw read of that
// layer from the upload port, and a range served before its digest was
// checked. Every one is refused or served by the registry itself, honest
// pulls in the same test get the registry's bytes, and the registries'
// counters show no private byte went to a client they did not accept.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { taskIdOf } from "@lacewing/common";
import { deadProcesses } from "../../helpers/hostile.js";
import { LoopbackHttpServer } from "../../helpers/loopback-server.js";
import { randomBytesOf } from "../../helpers/origin.js";
import { startDaemon, type RunningProcess } from "../../helpers/processes.js";
import { fetchPieceWith, outcomeOf } from "../../helpers/peer.js";

const MiB = 1024 * 1024;
const digestOf = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/**
 * A registry's blob endpoint: `token` (when set) is the only Authorization
 * it accepts, `headAnything` makes it answer 200 to any HEAD (a host an
 * attacker controls). It counts the blob bytes it sent, and to whom.
 */
class BlobRegistry extends LoopbackHttpServer {
  readonly blobs = new Map<string, Buffer>();
  sentToAuthorized = 0;
  sentToOthers = 0;
  heads = 0;

  constructor(
    readonly token: string | undefined,
    readonly headAnything = false,
  ) {
    super();
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url?.split("?")[0] ?? "");
    if (req.method === "HEAD") this.heads++;
    if (req.method === "HEAD" && this.headAnything) return void res.writeHead(200, { "content-length": 1 }).end();
    const authorized = this.token === undefined || req.headers.authorization === `Bearer ${this.token}`;
    if (!authorized) return void res.writeHead(401, { "www-authenticate": 'Bearer realm="https://auth.example/token"' }).end();
    const blob = match === null ? undefined : this.blobs.get(match[2]!);
    if (blob === undefined) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = range === null ? 0 : Number(range[1]);
    const end = range === null || range[2] === "" ? blob.byteLength - 1 : Math.min(Number(range[2]), blob.byteLength - 1);
    const body = blob.subarray(start, end + 1);
    const headers = {
      "content-length": body.byteLength,
      "docker-content-digest": match![2]!,
      ...(range === null ? {} : { "content-range": `bytes ${start}-${end}/${blob.byteLength}` }),
    };
    res.writeHead(range === null ? 200 : 206, headers);
    if (req.method === "HEAD") return void res.end();
    if (req.headers.authorization !== undefined) this.sentToAuthorized += body.byteLength;
    else this.sentToOthers += body.byteLength;
    res.end(body);
  }
}

describe("hostile: the registry mirror", () => {
  let root: string;
  const privateRegistry = new BlobRegistry("good-token");
  const liar = new BlobRegistry(undefined, true);
  const layer = randomBytesOf(6 * MiB + 9, 51);
  const fresh = randomBytesOf(2 * MiB, 52);
  const daemons: Array<RunningProcess & { name: string; ports: { peer: number; upload: number; proxy: number; metrics: number } }> = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-hostile-mirror-"));
    await privateRegistry.start();
    await liar.start();
    privateRegistry.blobs.set(digestOf(layer), layer);
    privateRegistry.blobs.set(digestOf(fresh), fresh);
  });

  after(async () => {
    const dead = deadProcesses(daemons);
    for (const daemon of daemons) await daemon.stop();
    await privateRegistry.close();
    await liar.close();
    await rm(root, { recursive: true, force: true });
    assert.deepEqual(dead, [], "no request killed a daemon");
  });

  async function node(name: string, registries: string[]): Promise<(typeof daemons)[number]> {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    const plain = [privateRegistry.host, liar.host].join(",");
    const args = ["--proxy-plain-http-registries", plain, ...(registries.length > 0 ? ["--proxy-registries", registries.join(",")] : [])];
    const daemon = { ...(await startDaemon(dir, args)), name };
    daemons.push(daemon);
    return daemon;
  }

  const blobUrl = (daemon: (typeof daemons)[number], registry: string, digest: string, name = "team/app"): string =>
    `http://127.0.0.1:${daemon.ports.proxy}/v2/${name}/blobs/${digest}?ns=${encodeURIComponent(registry)}`;

  it("is no open proxy: with no registry listed it refuses every request and says how to list them", async () => {
    const bare = await node("bare", []);
    const response = await fetch(blobUrl(bare, privateRegistry.host, digestOf(layer)), { headers: { authorization: "Bearer good-token" } });
    assert.equal(response.status, 403);
    assert.match(await response.text(), /serves no registries: list them with --proxy-registries/);
  });

  it("serves a cached private layer only to a client the registry it came from accepts: an ns swap gets nothing", async () => {
    const strict = await node("strict", [privateRegistry.host]);
    const loose = await node("loose", [privateRegistry.host, liar.host]);
    const digest = digestOf(layer);
    for (const daemon of [strict, loose]) {
      const pulled = await fetch(blobUrl(daemon, privateRegistry.host, digest), { headers: { authorization: "Bearer good-token" } });
      assert.equal(pulled.status, 200);
      assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(layer), "the authorised pull gets the layer");
    }
    const sentBefore = privateRegistry.sentToOthers;

    // Without credentials, through the registry itself: its own 401, no bytes.
    const anonymous = await fetch(blobUrl(strict, privateRegistry.host, digest));
    assert.equal(anonymous.status, 401);
    assert.equal((await anonymous.arrayBuffer()).byteLength, 0);
    // Naming a host the node does not mirror: refused.
    const swapped = await fetch(blobUrl(strict, liar.host, digest));
    assert.equal(swapped.status, 403);
    await swapped.arrayBuffer();
    // On a node that (wrongly) mirrors the attacker's host too: the layer came from the private registry, which refuses this client.
    const heads = liar.heads;
    const misconfigured = await fetch(blobUrl(loose, liar.host, digest, "attacker/any"));
    assert.equal(liar.heads, heads + 1, "the attacker's host was asked and said yes");
    assert.notEqual(misconfigured.status, 200);
    assert.ok(!Buffer.from(await misconfigured.arrayBuffer()).equals(layer), "the cached layer was not handed over");
    assert.equal(privateRegistry.sentToOthers, sentBefore, "the private registry sent nothing to an unauthorised client");

    // And no stranger reads it from the upload port.
    const taskId = taskIdOf({ url: `http://${privateRegistry.host}/v2/team/app/blobs/${digest}` });
    assert.equal(outcomeOf(await fetchPieceWith(strict.ports.upload, taskId, 0, "guessed")), "unauthorized");
  });

  it("serves a range of a blob it has not verified from the registry, not from unverified pieces", async () => {
    const strict = daemons.find((d) => d.name === "strict")!;
    const digest = digestOf(fresh);
    const before = privateRegistry.sentToAuthorized;
    const response = await fetch(blobUrl(strict, privateRegistry.host, digest), { headers: { authorization: "Bearer good-token", range: "bytes=100-199" } });
    assert.equal(response.status, 206);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(fresh.subarray(100, 200)));
    assert.equal(privateRegistry.sentToAuthorized - before, 100, "exactly the range, from the registry");
  });
});
