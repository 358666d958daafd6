import { createHash, createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { HfRepoType } from "../hf/hf-url.js";

/**
 * A small model hub for tests: exactly the endpoints `hf://` uses, with the
 * Hub's field names, status codes and `X-Error-Code`s.
 *
 * - `GET /api/<type>s/<repo>/revision/<rev>`: `{ id, sha, siblings: [{ rfilename }], … }`;
 * - `GET /api/<type>s/<repo>/tree/<rev>[/<path>][?recursive=true]`: entries
 *   `{ type, oid, size, path, lfs?: { oid, size, pointerSize } }`, paged with
 *   `Link: <…&cursor=…>; rel="next"`;
 * - `GET|HEAD /[datasets/|spaces/]<repo>/resolve/<rev>/<path>`: `X-Repo-Commit`
 *   and `ETag`; a small file is served from here (Range honoured), an LFS file
 *   answers `302` to a separate storage server with a signed URL
 *   (`X-Linked-Size`, `X-Linked-Etag`), like the Hub's CDN.
 *
 * Errors: a missing or private repository is `401` without a token and `404`
 * with one (`RepoNotFound`), an unknown revision `404 RevisionNotFound`, a
 * missing file `404 EntryNotFound`, a wrong token `401`; bodies are
 * `{"error": "…"}` and the message is also in `X-Error-Message`.
 */
export interface TestHubOptions {
  /** The one token the hub accepts (as `Authorization: Bearer <token>`). */
  token?: string;
  /** Entries per tree page (the Hub's is 1 000); small values exercise paging. */
  pageSize?: number;
  /** Files of at least this many bytes are LFS files, served by the storage host. Default 1 KiB. */
  lfsThreshold?: number;
}

export interface TestHubRepo {
  type?: HfRepoType;
  /** `owner/name`. */
  id: string;
  private?: boolean;
}

/** What the hub and its storage served, for tests that count origin bytes. */
export interface TestHubStats {
  /** Body bytes the storage host sent (LFS files). */
  storageBytes: number;
  storageRequests: number;
  /** Storage requests that carried an Authorization header: must stay 0, the token is the hub's. */
  storageAuthorizations: number;
  /** Body bytes of small files served by the hub itself. */
  hubFileBytes: number;
  /** Requests per endpoint: "revision", "tree", "resolve". */
  requests: Record<string, number>;
}

interface StoredFile {
  content: Buffer;
  blobOid: string;
  sha256: string;
  lfs: boolean;
  pointerSize: number;
}

interface Repo {
  type: HfRepoType;
  id: string;
  private: boolean;
  refs: Map<string, string>;
  commits: Map<string, Map<string, StoredFile>>;
  createdAt: string;
}

export class TestHub {
  readonly stats: TestHubStats = { storageBytes: 0, storageRequests: 0, storageAuthorizations: 0, hubFileBytes: 0, requests: {} };
  private readonly repos = new Map<string, Repo>();
  private readonly blobs = new Map<string, Buffer>();
  private readonly secret = randomBytes(16);
  private commitCounter = 0;

  private constructor(
    private readonly hub: Server,
    private readonly storage: Server,
    private readonly options: Required<Omit<TestHubOptions, "token">> & { token: string | undefined },
  ) {}

  static async start(options: TestHubOptions = {}): Promise<TestHub> {
    const hubServer = createServer();
    const storageServer = createServer();
    const hub = new TestHub(hubServer, storageServer, { token: options.token, pageSize: options.pageSize ?? 1000, lfsThreshold: options.lfsThreshold ?? 1024 });
    hubServer.on("request", (req, res) => hub.serveHub(req, res));
    storageServer.on("request", (req, res) => hub.serveStorage(req, res));
    await Promise.all([listen(hubServer), listen(storageServer)]);
    return hub;
  }

  /** `http://127.0.0.1:<port>`: the value of HF_ENDPOINT. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
  }

  /** The storage host's origin (another port: another origin, so a client must drop the token there). */
  get storageOrigin(): string {
    return `http://127.0.0.1:${(this.storage.address() as AddressInfo).port}`;
  }

  createRepo(repo: TestHubRepo): void {
    const type = repo.type ?? "model";
    this.repos.set(keyOf(type, repo.id), {
      type,
      id: repo.id,
      private: repo.private ?? false,
      refs: new Map(),
      commits: new Map(),
      createdAt: new Date().toISOString(),
    });
  }

  /** Commits `files` (the whole tree of the new commit) and moves `branch` (default main) to it; returns the commit sha. */
  commit(repoId: string, files: Record<string, string | Buffer>, options: { type?: HfRepoType; branch?: string } = {}): string {
    const repo = this.repos.get(keyOf(options.type ?? "model", repoId));
    if (repo === undefined) throw new Error(`no repo ${repoId}`);
    const tree = new Map<string, StoredFile>();
    for (const [path, raw] of Object.entries(files)) {
      const content = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
      const sha256 = createHash("sha256").update(content).digest("hex");
      const lfs = content.byteLength >= this.options.lfsThreshold;
      const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${content.byteLength}\n`);
      if (lfs) this.blobs.set(sha256, content);
      tree.set(path, { content, sha256, lfs, pointerSize: pointer.byteLength, blobOid: gitBlobOid(lfs ? pointer : content) });
    }
    const sha = createHash("sha1")
      .update(`${repoId}\0${this.commitCounter++}\0${[...tree.values()].map((f) => f.blobOid).join(",")}`)
      .digest("hex");
    repo.commits.set(sha, tree);
    repo.refs.set(options.branch ?? "main", sha);
    return sha;
  }

  resetStats(): void {
    Object.assign(this.stats, { storageBytes: 0, storageRequests: 0, storageAuthorizations: 0, hubFileBytes: 0, requests: {} });
  }

  async close(): Promise<void> {
    await Promise.all([closeServer(this.hub), closeServer(this.storage)]);
  }

  private count(kind: string): void {
    this.stats.requests[kind] = (this.stats.requests[kind] ?? 0) + 1;
  }

  private serveHub(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.endpoint);
    const segments = url.pathname.split("/").slice(1);
    let decoded: string[];
    try {
      decoded = segments.map(decodeURIComponent);
    } catch {
      return hubError(res, 400, undefined, "Invalid path");
    }
    const authorization = req.headers.authorization;
    if (authorization !== undefined && (this.options.token === undefined || authorization !== `Bearer ${this.options.token}`))
      return hubError(res, 401, undefined, "Invalid credentials in Authorization header");
    const authenticated = authorization !== undefined;
    if (decoded[0] === "api") {
      const type = API_TYPES[decoded[1] ?? ""];
      const [owner, name, action, rev] = decoded.slice(2);
      if (type === undefined || owner === undefined || name === undefined || rev === undefined || (action !== "revision" && action !== "tree"))
        return hubError(res, 404, undefined, "Sorry, we can't find the page you are looking for.");
      this.count(action);
      const repo = this.visibleRepo(type, `${owner}/${name}`, authenticated, res);
      if (repo === undefined) return;
      const sha = this.revisionOf(repo, rev, res);
      if (sha === undefined) return;
      if (action === "revision") return this.revisionInfo(repo, sha, res);
      return this.tree(repo, sha, decoded.slice(6).join("/"), url, res);
    }
    const typed = PREFIX_TYPES[decoded[0] ?? ""];
    const rest = typed === undefined ? decoded : decoded.slice(1);
    const [owner, name, action, rev] = rest;
    if (owner === undefined || name === undefined || action !== "resolve" || rev === undefined)
      return hubError(res, 404, undefined, "Sorry, we can't find the page you are looking for.");
    this.count("resolve");
    const repo = this.visibleRepo(typed ?? "model", `${owner}/${name}`, authenticated, res);
    if (repo === undefined) return;
    const sha = this.revisionOf(repo, rev, res);
    if (sha === undefined) return;
    const path = rest.slice(4).join("/");
    const file = repo.commits.get(sha)?.get(path);
    if (file === undefined) return hubError(res, 404, "EntryNotFound", "Entry not found", { "x-repo-commit": sha });
    res.setHeader("x-repo-commit", sha);
    if (file.lfs) {
      const expires = String(Math.floor(Date.now() / 1000) + 3600);
      const signature = this.sign(file.sha256, expires);
      res.writeHead(302, {
        location: `${this.storageOrigin}/repos/${file.sha256}?Expires=${expires}&X-Amz-Signature=${signature}&response-content-disposition=inline`,
        etag: `"${file.sha256}"`,
        "x-linked-etag": `"${file.sha256}"`,
        "x-linked-size": String(file.content.byteLength),
        "content-length": "0",
      });
      res.end();
      return;
    }
    res.setHeader("etag", `"${file.blobOid}"`);
    this.stats.hubFileBytes += sendRanged(req, res, file.content);
  }

  private serveStorage(req: IncomingMessage, res: ServerResponse): void {
    this.stats.storageRequests++;
    if (req.headers.authorization !== undefined) this.stats.storageAuthorizations++;
    const url = new URL(req.url ?? "/", this.storageOrigin);
    const sha256 = /^\/repos\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const content = sha256 === undefined ? undefined : this.blobs.get(sha256);
    const expires = url.searchParams.get("Expires") ?? "";
    if (sha256 === undefined || content === undefined || url.searchParams.get("X-Amz-Signature") !== this.sign(sha256, expires)) {
      res.writeHead(403, { "content-type": "application/xml" });
      res.end("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
      return;
    }
    this.stats.storageBytes += sendRanged(req, res, content);
  }

  private sign(sha256: string, expires: string): string {
    return createHmac("sha256", this.secret).update(`${sha256}\0${expires}`).digest("hex");
  }

  /** The repo, or an error answer: missing and hidden look alike, 401 without a token and 404 with one (as the Hub does). */
  private visibleRepo(type: HfRepoType, id: string, authenticated: boolean, res: ServerResponse): Repo | undefined {
    const repo = this.repos.get(keyOf(type, id));
    if (repo !== undefined && (!repo.private || authenticated)) return repo;
    hubError(res, authenticated ? 404 : 401, "RepoNotFound", "Repository not found");
    return undefined;
  }

  private revisionOf(repo: Repo, rev: string, res: ServerResponse): string | undefined {
    const sha = repo.refs.get(rev) ?? (repo.commits.has(rev) ? rev : undefined);
    if (sha === undefined) hubError(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
    return sha;
  }

  private revisionInfo(repo: Repo, sha: string, res: ServerResponse): void {
    const files = repo.commits.get(sha) ?? new Map<string, StoredFile>();
    const [author] = repo.id.split("/");
    sendJson(res, 200, {
      _id: createHash("sha1").update(repo.id).digest("hex").slice(0, 24),
      id: repo.id,
      ...(repo.type === "model" ? { modelId: repo.id } : {}),
      author,
      sha,
      lastModified: new Date().toISOString(),
      createdAt: repo.createdAt,
      private: repo.private,
      gated: false,
      disabled: false,
      downloads: 0,
      likes: 0,
      tags: [],
      siblings: [...files.keys()].sort().map((rfilename) => ({ rfilename })),
    });
  }

  private tree(repo: Repo, sha: string, path: string, url: URL, res: ServerResponse): void {
    const files = repo.commits.get(sha) ?? new Map<string, StoredFile>();
    const recursive = url.searchParams.get("recursive") === "true";
    const prefix = path === "" ? "" : `${path}/`;
    const entries = new Map<string, Record<string, unknown>>();
    for (const [filePath, file] of files) {
      if (!filePath.startsWith(prefix)) continue;
      const below = filePath.slice(prefix.length).split("/");
      // Every directory on the way is an entry of its own, as the Hub lists them.
      for (let depth = 1; depth < below.length && (recursive || depth === 1); depth++) {
        const dir = prefix + below.slice(0, depth).join("/");
        entries.set(dir, { type: "directory", oid: createHash("sha1").update(`${sha}\0${dir}`).digest("hex"), size: 0, path: dir });
      }
      if (below.length === 1 || recursive)
        entries.set(filePath, {
          type: "file",
          oid: file.blobOid,
          size: file.content.byteLength,
          path: filePath,
          ...(file.lfs ? { lfs: { oid: file.sha256, size: file.content.byteLength, pointerSize: file.pointerSize } } : {}),
        });
    }
    if (entries.size === 0) return hubError(res, 404, "EntryNotFound", `${path} does not exist on "${sha}"`);
    const sorted = [...entries.values()].sort((a, b) => (String(a["path"]) < String(b["path"]) ? -1 : 1));
    const start = Number(Buffer.from(url.searchParams.get("cursor") ?? "", "base64url").toString() || "0");
    const page = sorted.slice(start, start + this.options.pageSize);
    const end = start + page.length;
    if (end < sorted.length) {
      const next = new URL(url);
      next.searchParams.set("cursor", Buffer.from(String(end)).toString("base64url"));
      res.setHeader("link", `<${next.toString()}>; rel="next"`);
    }
    sendJson(res, 200, page);
  }
}

const API_TYPES: Record<string, HfRepoType> = { models: "model", datasets: "dataset", spaces: "space" };
const PREFIX_TYPES: Record<string, HfRepoType> = { datasets: "dataset", spaces: "space" };

function keyOf(type: HfRepoType, id: string): string {
  return `${type}:${id}`;
}

function gitBlobOid(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.byteLength}\0`).update(content).digest("hex");
}

function hubError(res: ServerResponse, status: number, code: string | undefined, message: string, headers: Record<string, string> = {}): void {
  res.setHeader("x-error-message", message);
  if (code !== undefined) res.setHeader("x-error-code", code);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  sendJson(res, status, { error: message });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/** Serves `content` honouring one `Range: bytes=a-b`; returns the body bytes sent. */
function sendRanged(req: IncomingMessage, res: ServerResponse, content: Buffer): number {
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
  let body = content;
  if (range !== null && (range[1] !== "" || range[2] !== "")) {
    const size = content.byteLength;
    const start = range[1] === "" ? Math.max(0, size - Number(range[2])) : Number(range[1]);
    const end = range[1] === "" || range[2] === "" ? size - 1 : Math.min(Number(range[2]), size - 1);
    if (start >= size || start > end) {
      res.writeHead(416, { "content-range": `bytes */${size}` });
      res.end();
      return 0;
    }
    body = content.subarray(start, end + 1);
    res.writeHead(206, { "content-range": `bytes ${start}-${end}/${size}`, "content-length": body.byteLength, "accept-ranges": "bytes" });
  } else {
    res.writeHead(200, { "content-length": body.byteLength, "accept-ranges": "bytes", "content-type": "application/octet-stream" });
  }
  if (req.method === "HEAD") {
    res.end();
    return 0;
  }
  res.end(body);
  return body.byteLength;
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
