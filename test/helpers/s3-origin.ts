import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createInterface } from "node:readline";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * An S3 origin for the tests: `s3rver` (an S3-protocol server in Node, from
 * npm) behind a small front that does what s3rver does not.
 *
 * - **SigV4.** s3rver 3.7.1 does not verify version-4 signatures (its
 *   authentication middleware says "Signature version 4 calculation is
 *   unimplemented": it only checks that the access key id exists). The front
 *   recomputes every request's signature by hand, as S3 does — from the
 *   `Authorization` header (header signing) or from the `X-Amz-*` query
 *   (presigned URLs, whose expiry it also checks) — against its own table of
 *   keys, and answers a mismatch with S3's 403 `SignatureDoesNotMatch` XML, an
 *   unknown key with `InvalidAccessKeyId`, an unsigned request with
 *   `AccessDenied`. The payload hash is taken from `x-amz-content-sha256` as
 *   sent, not recomputed over the body. A verified request goes on to s3rver
 *   unsigned (s3rver lets anonymous requests through).
 * - **If-Match.** s3rver ignores it; the front compares it with the ETag of
 *   s3rver's answer and sends S3's 412 `PreconditionFailed` instead of the
 *   body when they differ.
 * - **Origin bytes.** `bytesServed` counts the object bytes (GET bodies of
 *   objects, not listings) the front sent: what the bucket served.
 * - **One-byte ranges.** s3rver answers `Range: bytes=N-N` with the rest of
 *   the object (it takes an end of 0 for none); the front cuts the body to
 *   the range asked, as S3 answers it.
 *
 * s3rver runs in a child process with `--openssl-legacy-provider`: its
 * ListObjectsV2 continuation tokens are DES-encrypted, which OpenSSL 3 only
 * has in its legacy provider (without it any listing of more than one page
 * fails with a 500).
 *
 * Path-style addressing only (`http://127.0.0.1:PORT/bucket/key`): the tests
 * set AWS_S3_FORCE_PATH_STYLE or the flag.
 */
export class TestS3Origin {
  readonly accessKeyId = "LACEWINGTESTKEY";
  readonly secretAccessKey = "lacewing-test-secret-0123456789";
  readonly region = "us-east-1";
  /** Object body bytes sent to clients. */
  bytesServed = 0;
  /** Object GETs answered with content. */
  objectGets = 0;
  /** Requests refused for a bad, missing or expired signature. */
  refused = 0;
  /** Requests whose signature checked out, by how they were signed. */
  readonly verified = { header: 0, query: 0 };
  /**
   * Awaited before a verified object GET is forwarded, with its URL path: a
   * test overwrites an object at an exact point of a download with it.
   */
  beforeObjectGet: ((path: string) => Promise<void>) | undefined;
  readonly #server: Server;
  #s3rver: ChildProcess | undefined;
  #upstream: { address: string; port: number } | undefined;
  #directory = "";

  readonly #listen: { host: string; port: number };

  /** `listen`: where the front listens (loopback on a free port by default; the benchmark's origin host takes 0.0.0.0 and a fixed port). */
  constructor(
    readonly buckets: readonly string[],
    listen: { host?: string; port?: number } = {},
  ) {
    this.#listen = { host: listen.host ?? "127.0.0.1", port: listen.port ?? 0 };
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<string> {
    this.#directory = await mkdtemp(join(tmpdir(), "lw-s3rver-"));
    const options = { address: "127.0.0.1", port: 0, silent: true, directory: this.#directory, configureBuckets: this.buckets.map((name) => ({ name })) };
    const script = `const S3rver = require(${JSON.stringify(createRequire(import.meta.url).resolve("s3rver"))});
      new S3rver(${JSON.stringify(options)}).run().then((a) => console.log(JSON.stringify(a)), (e) => { console.error(e); process.exit(1); });`;
    this.#s3rver = spawn(process.execPath, ["--openssl-legacy-provider", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const lines = createInterface({ input: this.#s3rver.stdout! });
    const [first] = (await Promise.race([once(lines, "line"), once(this.#s3rver, "exit").then(() => [undefined])])) as [string | undefined];
    if (first === undefined) throw new Error("s3rver did not start");
    this.#upstream = JSON.parse(first) as { address: string; port: number };
    await new Promise<void>((resolve) => this.#server.listen(this.#listen.port, this.#listen.host, resolve));
    return this.endpoint;
  }

  /** The front's URL; for a front on all addresses, the loopback one. */
  get endpoint(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://${this.#listen.host === "0.0.0.0" ? "127.0.0.1" : this.#listen.host}:${port}`;
  }

  /** The AWS_* environment of a caller holding this origin's key (path style). */
  env(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      AWS_ACCESS_KEY_ID: this.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.secretAccessKey,
      AWS_REGION: this.region,
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_S3_FORCE_PATH_STYLE: "true",
      ...overrides,
    };
  }

  /** Writes an object straight into s3rver (no signature, not counted): the tests' way to fill and overwrite the bucket. */
  async put(bucket: string, key: string, bytes: Buffer): Promise<void> {
    const path = `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
    await new Promise<void>((resolve, reject) => {
      const req = request(
        { host: this.#upstream!.address, port: this.#upstream!.port, method: "PUT", path, headers: { "content-length": bytes.byteLength } },
        (res) => {
          res.resume();
          res.on("end", () => ((res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`s3rver answered PUT ${path} with ${res.statusCode}`))));
        },
      );
      req.on("error", reject);
      req.end(bytes);
    });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const child = this.#s3rver;
    if (child !== undefined && child.exitCode === null) {
      const exited = once(child, "exit");
      child.kill();
      await exited;
    }
    await rm(this.#directory, { recursive: true, force: true });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const problem = this.#verify(req);
    if (problem !== undefined) {
      this.refused++;
      req.resume();
      sendError(res, 403, problem.code, problem.message);
      return;
    }
    const url = new URL(req.url ?? "/", "http://front");
    for (const name of [...url.searchParams.keys()]) if (name.toLowerCase().startsWith("x-amz-")) url.searchParams.delete(name);
    const headers = { ...req.headers };
    delete headers["authorization"];
    delete headers["x-amz-security-token"];
    const isObjectGet = req.method === "GET" && url.pathname.split("/").filter((s) => s !== "").length >= 2;
    const hook = isObjectGet ? this.beforeObjectGet : undefined;
    if (hook === undefined) this.#forward(req, res, url, headers, isObjectGet);
    else
      hook(url.pathname).then(
        () => this.#forward(req, res, url, headers, isObjectGet),
        () => res.destroy(),
      );
  }

  #forward(req: IncomingMessage, res: ServerResponse, url: URL, headers: IncomingMessage["headers"], isObjectGet: boolean): void {
    const upstream = request(
      { host: this.#upstream!.address, port: this.#upstream!.port, method: req.method, path: `${url.pathname}${url.search}`, headers },
      (answer) => {
        const ifMatch = req.headers["if-match"];
        const etag = answer.headers["etag"];
        if (ifMatch !== undefined && (answer.statusCode ?? 0) < 300 && etag !== undefined && ifMatch !== etag) {
          answer.destroy();
          sendError(res, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
          return;
        }
        const counted = isObjectGet && (answer.statusCode === 200 || answer.statusCode === 206);
        if (counted) this.objectGets++;
        // s3rver answers `bytes=N-N` with everything from N on (it reads an end of 0 as none): cut the body to what was asked, as S3 does.
        const asked = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers["range"] ?? ""));
        const given = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(answer.headers["content-range"] ?? ""));
        let limit = Infinity;
        if (answer.statusCode === 206 && asked && given && asked[1] === given[1] && Number(asked[2]) < Number(given[2])) {
          limit = Number(asked[2]) - Number(asked[1]) + 1;
          answer.headers["content-range"] = `bytes ${asked[1]}-${asked[2]}/${given[3]}`;
          answer.headers["content-length"] = String(limit);
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        let sent = 0;
        answer.on("data", (chunk: Buffer) => {
          const part = chunk.subarray(0, Math.max(0, limit - sent));
          sent += part.byteLength;
          if (counted) this.bytesServed += part.byteLength;
          if (part.byteLength > 0) res.write(part);
          if (sent >= limit) {
            answer.destroy();
            res.end();
          }
        });
        answer.on("end", () => res.end());
        answer.on("error", () => res.destroy());
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  }

  /** Why S3 would refuse this request's signature, or undefined when it checks out. */
  #verify(req: IncomingMessage): { code: string; message: string } | undefined {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = (q < 0 ? "" : raw.slice(q + 1))
      .split("&")
      .filter((p) => p !== "")
      .map((pair) => {
        const eq = pair.indexOf("=");
        return [decode(eq < 0 ? pair : pair.slice(0, eq)), eq < 0 ? "" : decode(pair.slice(eq + 1))] as [string, string];
      });
    const param = (name: string): string | undefined => params.find(([key]) => key === name)?.[1];
    let credential: string, signedHeaders: string, signature: string, amzDate: string, payloadHash: string;
    let kind: "header" | "query";
    if (param("X-Amz-Algorithm") !== undefined) {
      kind = "query";
      credential = param("X-Amz-Credential") ?? "";
      signedHeaders = param("X-Amz-SignedHeaders") ?? "";
      signature = param("X-Amz-Signature") ?? "";
      amzDate = param("X-Amz-Date") ?? "";
      payloadHash = "UNSIGNED-PAYLOAD";
      const expires = Number(param("X-Amz-Expires"));
      if (!Number.isFinite(expires) || Date.parse(isoOf(amzDate)) + expires * 1000 < Date.now())
        return { code: "AccessDenied", message: "Request has expired" };
    } else if (typeof req.headers["authorization"] === "string") {
      kind = "header";
      const match = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(req.headers["authorization"]);
      if (!match) return { code: "AccessDenied", message: "Unsupported Authorization header" };
      [, credential = "", signedHeaders = "", signature = ""] = match;
      amzDate = String(req.headers["x-amz-date"] ?? "");
      payloadHash = String(req.headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD");
    } else {
      return { code: "AccessDenied", message: "Access Denied" };
    }
    const [keyId = "", date = "", region = "", service = ""] = credential.split("/");
    if (keyId !== this.accessKeyId) return { code: "InvalidAccessKeyId", message: "The AWS Access Key Id you provided does not exist in our records." };
    const canonicalQuery = params
      .filter(([key]) => !(kind === "query" && key === "X-Amz-Signature"))
      .map(([key, value]) => [uriEncode(key), uriEncode(value)] as const)
      .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
      .map(([key, value]) => `${key}=${value}`)
      .join("&");
    const canonicalHeaders = signedHeaders
      .split(";")
      .map(
        (name) =>
          `${name}:${String(req.headers[name] ?? "")
            .trim()
            .replace(/\s+/g, " ")}\n`,
      )
      .join("");
    const canonicalRequest = [req.method, path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join("\n");
    const scope = `${date}/${region}/${service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, createHash("sha256").update(canonicalRequest).digest("hex")].join("\n");
    let key: Buffer = hmac(`AWS4${this.secretAccessKey}`, date);
    for (const part of [region, service, "aws4_request"]) key = hmac(key, part);
    const expected = createHmac("sha256", key).update(stringToSign).digest();
    const given = Buffer.from(signature, "hex");
    if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected))
      return {
        code: "SignatureDoesNotMatch",
        message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
      };
    this.verified[kind]++;
    return undefined;
  }
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** SigV4's URI encoding: RFC 3986 unreserved characters stay, everything else is %XX. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** 20260101T000000Z → 2026-01-01T00:00:00Z */
function isoOf(amzDate: string): string {
  return amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z");
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
