import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A test registry: OCI index → linux/amd64 + linux/arm64 manifests → layers, behind a Bearer token flow. */
export interface FakeRegistry {
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  readonly host: string;
  readonly name: string;
  /** Digests of the linux/amd64 layers, in manifest order. */
  readonly amd64Layers: string[];
  readonly arm64Layers: string[];
  /** Digests of the image config blobs. */
  readonly amd64Config: string;
  readonly arm64Config: string;
  readonly token: string;
  /** Every token the token endpoint handed out, in order. */
  readonly issuedTokens: string[];
  /** When each token was handed out (Date.now()). */
  readonly tokenIssuedAt: Map<string, number>;
  /** Authorization headers the token endpoint saw. */
  readonly tokenRequests: Array<{ authorization: string | undefined; scope: string | null; service: string | null }>;
  /** Count of manifest requests answered 401. */
  unauthorized: number;
  manifestUrl(tag?: string): string;
  close(): Promise<void>;
}

export interface FakeRegistryOptions {
  username?: string;
  password?: string;
  layers?: number;
  /** Token lifetime the token endpoint announces (expires_in). */
  tokenTtlSeconds?: number;
  /** Issue a new token on every token request (`<token>-<n>`) instead of the same one. */
  rotateTokens?: boolean;
}

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const name = "library/app";
  const token = `tok-${randomBytes(6).toString("hex")}`;
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { mediaType: string; body: Buffer }>();
  const addBlob = (data: Buffer): string => {
    const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
    blobs.set(digest, data);
    return digest;
  };
  const addManifest = (mediaType: string, value: unknown): { digest: string; size: number } => {
    const body = Buffer.from(JSON.stringify(value));
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    manifests.set(digest, { mediaType, body });
    return { digest, size: body.length };
  };
  const imageManifest = (arch: string): { digest: string; size: number; layers: string[]; config: string } => {
    const layers = Array.from({ length: options.layers ?? 3 }, (_, i) => addBlob(Buffer.from(`${arch} layer ${i} ${randomBytes(8).toString("hex")}`)));
    const config = addBlob(Buffer.from(JSON.stringify({ architecture: arch, os: "linux" })));
    const ref = addManifest("application/vnd.oci.image.manifest.v1+json", {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config, size: blobs.get(config)?.length ?? 0 },
      layers: layers.map((digest) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest, size: blobs.get(digest)?.length ?? 0 })),
    });
    return { ...ref, layers, config };
  };
  const amd64 = imageManifest("amd64");
  const arm64 = imageManifest("arm64");
  const index = addManifest("application/vnd.oci.image.index.v1+json", {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: arm64.digest,
        size: arm64.size,
        platform: { os: "linux", architecture: "arm64", variant: "v8" },
      },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: amd64.digest, size: amd64.size, platform: { os: "linux", architecture: "amd64" } },
    ],
  });
  const tags = new Map([["latest", index.digest]]);

  const tokenRequests: FakeRegistry["tokenRequests"] = [];
  const issuedTokens: string[] = [];
  const tokenIssuedAt = new Map<string, number>();
  let origin = "";
  const registry: FakeRegistry = {
    get origin() {
      return origin;
    },
    get host() {
      return new URL(origin).host;
    },
    name,
    amd64Layers: amd64.layers,
    arm64Layers: arm64.layers,
    amd64Config: amd64.config,
    arm64Config: arm64.config,
    token,
    issuedTokens,
    tokenIssuedAt,
    tokenRequests,
    unauthorized: 0,
    manifestUrl: (tag = "latest") => `${origin}/v2/${name}/manifests/${tag}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  const basicOk = (req: IncomingMessage): boolean => {
    if (options.username === undefined) return true;
    const expected = `Basic ${Buffer.from(`${options.username}:${options.password ?? ""}`).toString("base64")}`;
    return req.headers.authorization === expected;
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", origin);
    if (url.pathname === "/token") {
      tokenRequests.push({ authorization: req.headers.authorization, scope: url.searchParams.get("scope"), service: url.searchParams.get("service") });
      if (!basicOk(req)) return void res.writeHead(401).end();
      const issued = options.rotateTokens === true ? `${token}-${issuedTokens.length + 1}` : token;
      issuedTokens.push(issued);
      tokenIssuedAt.set(issued, Date.now());
      return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: issued, expires_in: options.tokenTtlSeconds ?? 300 }));
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (bearer === undefined || (options.rotateTokens === true ? !issuedTokens.includes(bearer) : bearer !== token)) {
      registry.unauthorized++;
      res.writeHead(401, {
        "www-authenticate": `Bearer realm="${origin}/token",service="fake-registry",scope="repository:${name}:pull"`,
        "content-type": "application/json",
      });
      return void res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED" }] }));
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest !== null && manifest[1] === name) {
      const ref = manifest[2] ?? "";
      const found = manifests.get(tags.get(ref) ?? ref);
      if (found === undefined) return void res.writeHead(404).end();
      return void res.writeHead(200, { "content-type": found.mediaType }).end(found.body);
    }
    const blob = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(url.pathname);
    const data = blob === null ? undefined : blobs.get(blob[2] ?? "");
    if (data !== undefined) return void res.writeHead(200, { "content-type": "application/octet-stream" }).end(data);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return registry;
}
