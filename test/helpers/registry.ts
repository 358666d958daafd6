import { createHash, createPrivateKey, createSign, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { execOk, startBinary } from "./commands.js";
import { LoopbackHttpServer } from "./loopback-server.js";
import type { RunningProcess } from "./processes.js";

/**
 * Real-registry fixtures: the CNCF Distribution registry (Debian's
 * `docker-registry`), optionally behind Bearer token auth served by an
 * in-process token server; a counting HTTP proxy to put in front of it; and
 * test images built offline with umoci and pushed with skopeo.
 */

export interface Registry extends RunningProcess {
  /** host:port, as an image reference names it. */
  host: string;
  url: string;
}

/**
 * Starts docker-registry on loopback port 0, storing under `dir`; with
 * `auth`, every request needs a token from it. It says the address it bound
 * in an info line ("listening on"), so it logs at info, as JSON; output()
 * leaves its info lines (one per request) out.
 */
export async function startRegistry(dir: string, auth?: TokenServer): Promise<Registry> {
  await mkdir(join(dir, "storage"), { recursive: true });
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: json",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "storage")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    "  addr: 127.0.0.1:0",
    `  secret: ${randomBytes(16).toString("hex")}`,
  ];
  if (auth)
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${auth.realm}`,
      `    service: ${auth.service}`,
      `    issuer: ${auth.issuer}`,
      `    rootcertbundle: ${auth.certPath}`,
    );
  const config = join(dir, "config.yml");
  await writeFile(config, `${lines.join("\n")}\n`);
  const registry = startBinary("docker-registry", ["serve", config], { keep: (line) => !/^\{.*"level":"(info|debug)"/.test(line) });
  let host: string;
  try {
    // Logged once the listener is bound; connections wait in its backlog until it serves them.
    const [listening] = await registry.waitForLines(/"msg":"listening on 127\.0\.0\.1:\d+"/);
    host = /listening on (127\.0\.0\.1:\d+)/.exec(listening!)![1]!;
  } catch (err) {
    await registry.stop();
    throw err;
  }
  const url = `http://${host}`;
  return { ...registry, host, url };
}

/** What a counting proxy saw for one blob digest. */
export interface BlobTraffic {
  gets: number;
  heads: number;
  /** Body bytes sent for GETs of this blob. */
  bytes: number;
}

/** An HTTP proxy in front of a registry that counts, per blob digest, the requests and body bytes it passes on. */
export class CountingProxy extends LoopbackHttpServer {
  readonly blobs = new Map<string, BlobTraffic>();
  readonly #target: string;

  constructor(targetHost: string) {
    super();
    this.#target = targetHost;
  }

  traffic(digest: string): BlobTraffic {
    return this.blobs.get(digest) ?? { gets: 0, heads: 0, bytes: 0 };
  }

  reset(): void {
    this.blobs.clear();
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    const digest = /\/blobs\/(sha256:[a-f0-9]{64})/.exec(req.url ?? "")?.[1];
    const counts = digest === undefined ? undefined : (this.blobs.get(digest) ?? { gets: 0, heads: 0, bytes: 0 });
    if (digest !== undefined && counts !== undefined) {
      this.blobs.set(digest, counts);
      if (req.method === "HEAD") counts.heads++;
      else if (req.method === "GET") counts.gets++;
    }
    const [hostname, port] = this.#target.split(":") as [string, string];
    const upstream = httpRequest(
      { host: hostname, port: Number(port), method: req.method, path: req.url, headers: { ...req.headers, host: this.#target } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (counts !== undefined && req.method === "GET") answer.on("data", (chunk: Buffer) => (counts.bytes += chunk.byteLength));
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  }
}

/**
 * A Docker Registry v2 token server (the `auth: token` flow): issues RS256
 * JWTs with an `x5c` header to users with the right password, by GET with
 * basic auth (skopeo, containerd's fallback) or by POST form (containerd).
 */
export class TokenServer {
  readonly service = "lacewing-test-registry";
  readonly issuer = "lacewing-test-issuer";
  readonly users: Record<string, string> = { puller: "pull-secret" };
  issued = 0;
  certPath = "";
  #key: KeyObject | undefined;
  #certDer = "";
  readonly #server: Server = createServer((req, res) => void this.#handle(req, res));

  /** Generates the signing key and its self-signed certificate under `dir` (openssl), then listens. */
  async start(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const keyPath = join(dir, "token.key");
    this.certPath = join(dir, "token.crt");
    await execOk("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      this.certPath,
      "-days",
      "2",
      "-subj",
      "/CN=lacewing-test-token",
    ]);
    this.#key = createPrivateKey(await readFile(keyPath));
    this.#certDer = new X509Certificate(await readFile(this.certPath)).raw.toString("base64");
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
  }

  get realm(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/token`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://token");
    let params = url.searchParams;
    let user: string | undefined;
    let password: string | undefined;
    if (req.method === "POST") {
      let body = "";
      for await (const chunk of req) body += (chunk as Buffer).toString();
      params = new URLSearchParams(body);
      user = params.get("username") ?? undefined;
      password = params.get("password") ?? undefined;
    } else {
      const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
      const decoded = basic === undefined ? "" : Buffer.from(basic, "base64").toString();
      const colon = decoded.indexOf(":");
      if (colon > 0) [user, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    }
    if (user === undefined || this.users[user] !== password) {
      res.writeHead(401, { "content-type": "application/json" }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const access = params.getAll("scope").flatMap((scope) => {
      const [type, name, actions] = [
        scope.slice(0, scope.indexOf(":")),
        scope.slice(scope.indexOf(":") + 1, scope.lastIndexOf(":")),
        scope.slice(scope.lastIndexOf(":") + 1),
      ];
      return type && name && actions ? [{ type, name, actions: actions.split(",") }] : [];
    });
    const token = this.#sign(user, access);
    this.issued++;
    const body = JSON.stringify({ token, access_token: token, expires_in: 600, issued_at: new Date().toISOString() });
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  }

  #sign(subject: string, access: Array<{ type: string; name: string; actions: string[] }>): string {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
    const header = b64({ typ: "JWT", alg: "RS256", x5c: [this.#certDer] });
    const claims = b64({
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + 600,
      nbf: now - 60,
      iat: now,
      jti: randomBytes(8).toString("hex"),
      access,
    });
    const signature = createSign("RSA-SHA256").update(`${header}.${claims}`).sign(this.#key!).toString("base64url");
    return `${header}.${claims}.${signature}`;
  }
}

/** A file put into a test image, one layer each. */
export interface ImageFile {
  /** Path inside the image's root filesystem. */
  path: string;
  size: number;
  sha256: string;
}

export interface TestImage {
  /** OCI layout directory. */
  layout: string;
  tag: string;
  files: ImageFile[];
}

/**
 * Builds an image in an OCI layout offline: one layer per entry of
 * `layerSizes`, each adding a file of random bytes (so gzip cannot shrink it).
 */
export async function buildImage(dir: string, tag: string, layerSizes: number[]): Promise<TestImage> {
  const layout = join(dir, "oci");
  await mkdir(dir, { recursive: true });
  await execOk("umoci", ["init", "--layout", layout]).catch(async (err: Error) => {
    // A layout that already exists takes more tags.
    if (!/exist/i.test(err.message)) throw err;
  });
  await execOk("umoci", ["new", "--image", `${layout}:${tag}`]);
  const files: ImageFile[] = [];
  for (const [index, size] of layerSizes.entries()) {
    const source = join(dir, `${tag}-layer-${index}.bin`);
    const sha256 = await writeRandomFile(source, size);
    const path = `/data/${tag}-${index}.bin`;
    await execOk("umoci", ["insert", "--image", `${layout}:${tag}`, source, path]);
    files.push({ path, size, sha256 });
  }
  return { layout, tag, files };
}

/** Pushes an OCI layout image to a plain-HTTP registry with skopeo. */
export async function pushImage(image: TestImage, reference: string, credentials?: string): Promise<void> {
  await execOk("skopeo", [
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    ...(credentials === undefined ? [] : ["--dest-creds", credentials]),
    `oci:${image.layout}:${image.tag}`,
    `docker://${reference}`,
  ]);
}

export interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
}

/** The config and layer descriptors of an image's manifest, read from its OCI layout. */
export async function imageDescriptors(image: TestImage): Promise<{ config: Descriptor; layers: Descriptor[] }> {
  const index = JSON.parse(await readFile(join(image.layout, "index.json"), "utf8")) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === image.tag);
  if (!entry) throw new Error(`no ${image.tag} in ${image.layout}`);
  const manifest = JSON.parse(await readFile(join(image.layout, "blobs", ...entry.digest.split(":")), "utf8")) as {
    config: Descriptor;
    layers: Descriptor[];
  };
  return { config: manifest.config, layers: manifest.layers };
}

async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  for (let written = 0; written < size;) {
    const chunk = randomBytes(Math.min(4 * 1024 * 1024, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    written += chunk.byteLength;
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest("hex");
}

/** A plain registry and a token-protected one, each behind a counting proxy, under `root`. */
export interface RegistryPair {
  tokens: TokenServer;
  registry: Registry;
  privateRegistry: Registry;
  front: CountingProxy;
  privateFront: CountingProxy;
  close: () => Promise<void>;
}

export async function startRegistryPair(root: string): Promise<RegistryPair> {
  const tokens = new TokenServer();
  await tokens.start(join(root, "tokens"));
  const [registry, privateRegistry] = await Promise.all([startRegistry(join(root, "registry")), startRegistry(join(root, "private-registry"), tokens)]);
  const front = new CountingProxy(registry.host);
  const privateFront = new CountingProxy(privateRegistry.host);
  await Promise.all([front.start(), privateFront.start()]);
  return {
    tokens,
    registry,
    privateRegistry,
    front,
    privateFront,
    close: async () => {
      await Promise.all([front.close(), privateFront.close(), registry.stop(), privateRegistry.stop(), tokens.close()]);
    },
  };
}
