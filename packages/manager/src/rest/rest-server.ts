import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { LacewingError, errorMessage, type Logger } from "@lacewing/common";
import type { ManagerApi } from "../manager-api.js";
import { HttpRefusal, toHttpError } from "./http-errors.js";
import { jobJson } from "./json-views.js";
import { hostAllowList, isAllowedHost, isSameOrigin, type Authority } from "./request-guards.js";

const MAX_BODY_BYTES = 1024 * 1024;
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

export interface RestServerOptions {
  api: ManagerApi;
  /** Empty: no authentication (the manager then listens on loopback only). */
  token: string;
  /** Without a token: Host names answered besides the listen address and the loopback names (NAME or NAME:PORT). */
  allowedHosts: readonly string[];
  logger: Logger;
  /** Prometheus text of the manager's metrics. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  ready: () => Promise<boolean>;
}

type Handler = (request: IncomingMessage, params: string[], query: URLSearchParams) => Promise<{ status: number; body: unknown }>;

/** The REST API plus /metrics, /healthz and /readyz on one port. */
export class RestServer {
  readonly #options: RestServerOptions;
  readonly #server: Server;
  readonly #routes: Array<{ method: string; pattern: RegExp; handler: Handler }>;
  /** Set once bound: the Host check needs the bound port. */
  #hostAllowList: Authority[] = [];

  constructor(options: RestServerOptions) {
    this.#options = options;
    const { api } = options;
    this.#routes = [
      { method: "POST", pattern: /^\/api\/v1\/jobs$/, handler: async (req) => ({ status: 202, body: jobJson(await api.createJob(await readJson(req))) }) },
      {
        method: "GET",
        pattern: /^\/api\/v1\/jobs$/,
        handler: async (_req, _params, query) => {
          const page = await api.listJobs({
            ...optional("state", query.get("state")),
            ...optional("type", query.get("type")),
            ...optional("page", query.get("page")),
            ...optional("perPage", query.get("perPage") ?? query.get("per_page")),
          });
          return { status: 200, body: { jobs: page.jobs.map(jobJson), page: page.page, perPage: page.perPage, total: page.total } };
        },
      },
      { method: "GET", pattern: /^\/api\/v1\/jobs\/([^/]+)$/, handler: async (_req, [id]) => ({ status: 200, body: jobJson(await api.getJob(id ?? "")) }) },
      {
        method: "DELETE",
        pattern: /^\/api\/v1\/jobs\/([^/]+)$/,
        handler: async (_req, [id]) => ({ status: 200, body: jobJson(await api.cancelJob(id ?? "")) }),
      },
      { method: "GET", pattern: /^\/api\/v1\/clusters$/, handler: async () => ({ status: 200, body: { clusters: await api.listClusters() } }) },
      { method: "GET", pattern: /^\/api\/v1\/schedulers$/, handler: async () => ({ status: 200, body: { schedulers: await api.listSchedulers() } }) },
      { method: "GET", pattern: /^\/api\/v1\/hosts$/, handler: async () => ({ status: 200, body: await api.listHosts(false) }) },
      { method: "GET", pattern: /^\/api\/v1\/seed-peers$/, handler: async () => ({ status: 200, body: await api.listHosts(true) }) },
    ];
    this.#server = createServer((req, res) => {
      void this.#handle(req, res);
    });
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Binds host:port and returns the port. */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    const bound = (this.#server.address() as AddressInfo).port;
    this.#hostAllowList = hostAllowList(host, bound, this.#options.allowedHosts);
    return bound;
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = "";
    try {
      const url = requestUrl(req);
      path = url.pathname;
      // Every path, in every mode: no CORS header is ever sent either, so a browser page elsewhere gets nothing.
      refuseCrossOrigin(req);
      // Probes and Prometheus scrape without credentials; they reveal no job data.
      // They also skip the Host check: Kubernetes probes and scrapes address the
      // pod by IP (Host: <pod IP>:<port>), which no allow-list can know in advance.
      if (req.method === "GET" && url.pathname === "/healthz") return send(res, 200, { status: "ok" });
      if (req.method === "GET" && url.pathname === "/readyz") {
        const ready = await this.#options.ready();
        return send(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready" });
      }
      if (req.method === "GET" && url.pathname === "/metrics") {
        const { contentType, body } = await this.#options.metrics();
        res.writeHead(200, { "content-type": contentType }).end(body);
        return;
      }
      this.#checkHost(req);
      this.#authenticate(req);
      requireJsonBody(req);
      for (const route of this.#routes) {
        const match = route.pattern.exec(url.pathname);
        if (match === null) continue;
        if (route.method !== req.method) continue;
        const { status, body } = await route.handler(req, match.slice(1).map(decodePathParam), url.searchParams);
        return send(res, status, body);
      }
      throw new LacewingError("LW_ERR_MANAGER_NOT_FOUND", "not_found", `no route for ${req.method ?? ""} ${url.pathname}`);
    } catch (err) {
      const { status, body } = toHttpError(err);
      if (status >= 500) this.#options.logger.error({ err: errorMessage(err), method: req.method, path }, "request failed");
      send(res, status, body);
    }
  }

  /**
   * Without a token the API trusts whoever reaches it, and it listens on
   * loopback only, but a browser reaches loopback too: a page whose name the
   * attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin with the
   * manager and could drive it. Its requests carry the attacker's name as
   * Host, so only the names this manager listens under are answered. With a
   * token, a page reaching the API under any name still cannot authenticate.
   */
  #checkHost(req: IncomingMessage): void {
    if (this.#options.token !== "") return;
    if (isAllowedHost(req.headers.host, this.#hostAllowList)) return;
    throw new LacewingError(
      HttpRefusal.misdirectedRequest,
      "permission_denied",
      `this manager does not answer to Host ${JSON.stringify((req.headers.host ?? "").slice(0, 100))} without a token; list it in allowedHosts (--allowed-hosts)`,
    );
  }

  #authenticate(req: IncomingMessage): void {
    if (this.#options.token === "") return;
    const header = req.headers.authorization ?? "";
    const presented = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
    const expected = Buffer.from(this.#options.token);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
      throw new LacewingError("LW_ERR_MANAGER_UNAUTHENTICATED", "unauthenticated", "missing or wrong bearer token");
  }
}

function refuseCrossOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined || isSameOrigin(origin, req.headers.host)) return;
  throw new LacewingError(HttpRefusal.crossOrigin, "permission_denied", "cross-origin requests are refused: the API is for scripts, not browsers");
}

/**
 * A body must say it is JSON. A browser sends text/plain, form and multipart
 * bodies cross-site without asking first; application/json makes it ask (a
 * CORS preflight), and that question is refused above.
 */
function requireJsonBody(req: IncomingMessage): void {
  if (!BODY_METHODS.has(req.method ?? "")) return;
  const type = req.headers["content-type"] ?? "";
  if (type.split(";")[0]?.trim().toLowerCase() === "application/json") return;
  throw new LacewingError(
    HttpRefusal.unsupportedMediaType,
    "invalid_argument",
    `body: Content-Type must be application/json, got ${type === "" ? "none" : JSON.stringify(type.slice(0, 100))}`,
    { details: { field: "body" } },
  );
}

/**
 * The request target as a URL. Inside the handler's try: an absolute-form
 * target such as `http://[/` makes URL throw, and an unhandled rejection
 * would end the process.
 */
function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? "/", "http://manager");
  } catch {
    throw new LacewingError("LW_ERR_MANAGER_INVALID_ARGUMENT", "invalid_argument", "path: not a valid request target", { details: { field: "path" } });
  }
}

function decodePathParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new LacewingError("LW_ERR_MANAGER_INVALID_ARGUMENT", "invalid_argument", "path: bad percent-encoding", { details: { field: "path" } });
  }
}

function optional<K extends string>(key: K, value: string | null): Partial<Record<K, string>> {
  return value === null ? {} : ({ [key]: value } as Record<K, string>);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) }).end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new LacewingError("LW_ERR_MANAGER_INVALID_ARGUMENT", "invalid_argument", "body: larger than 1 MiB", { details: { field: "body" } });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new LacewingError("LW_ERR_MANAGER_INVALID_ARGUMENT", "invalid_argument", "body: not valid JSON", { details: { field: "body" } });
  }
}
