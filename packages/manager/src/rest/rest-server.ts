import { timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import fastifyStatic from "@fastify/static";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { ErrorCode, LacewingError, errorMessage, type Logger } from "@lacewing/common";
import type { ManagerApi } from "../manager-api.js";
import { validateInput, type InputPart } from "../schema/validate.js";
import { HttpRefusal, toHttpError } from "./http-errors.js";
import { registerApiRoutes } from "./api-routes.js";
import { hostAllowList, isAllowedHost, isSameOrigin, type Authority } from "./request-guards.js";

const MAX_BODY_BYTES = 1024 * 1024;
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
/** Paths that answer without the token and any Host: probes and the scrape reveal no job data. */
const PROBES = new Set(["/healthz", "/readyz", "/metrics"]);
/** Under /api/ every path needs the token, except the API's own description. */
const PUBLIC_API = /^\/api\/v1\/(openapi\.json|docs(\/.*)?)$/;

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
  /** Directories of the web console's files, served at `/`; none: no console. */
  consoleDirs?: readonly string[];
}

/**
 * The REST API (fastify, every route with its JSON schemas, see
 * api-routes.ts), its OpenAPI document and reference page, the web console,
 * and /metrics, /healthz and /readyz, on one port.
 */
export class RestServer {
  readonly #options: RestServerOptions;
  readonly #app: FastifyInstance;
  /** Set once bound: the Host check needs the bound port. */
  #hostAllowList: Authority[] = [];
  #ready: Promise<void> | undefined;

  constructor(options: RestServerOptions) {
    this.#options = options;
    this.#app = Fastify({
      bodyLimit: MAX_BODY_BYTES,
      keepAliveTimeout: 5_000,
      // Job ids are short; a long one is a bad id (400 naming it), not a 414.
      routerOptions: { maxParamLength: 1_000 },
      // A target the router cannot take (bad percent-encoding, an overlong parameter) never reaches a route: answer it in the API's shape.
      frameworkErrors: (err, _request, reply) => {
        const problem = err.code === "FST_ERR_BAD_URL" ? "bad percent-encoding" : "not a valid request target";
        this.#sendError(
          reply,
          new LacewingError(ErrorCode.managerInvalidArgument, "invalid_argument", `path: ${problem}`, { details: { field: "path" } }),
          undefined,
        );
      },
    }).withTypeProvider<TypeBoxTypeProvider>();
    const app = this.#app;
    // One validator for every route's schemas, the same the gRPC front uses, so both answer with the field at fault.
    app.setValidatorCompiler(({ schema, httpPart }) => {
      const part: InputPart = httpPart === "body" ? "body" : httpPart === "params" ? "params" : "querystring";
      return (data: unknown) => {
        try {
          return { value: validateInput(schema as Parameters<typeof validateInput>[0], data, part) };
        } catch (err) {
          return { error: err as Error };
        }
      };
    });
    app.setErrorHandler((err, request, reply) => this.#sendError(reply, fromFastifyError(err), request));
    app.setNotFoundHandler((request, reply) =>
      this.#sendError(
        reply,
        new LacewingError(ErrorCode.managerNotFound, "not_found", `no route for ${request.method} ${request.url.split("?")[0] ?? ""}`),
        request,
      ),
    );
    app.addHook("onRequest", async (request) => this.#guard(request));
    app.addHook("onSend", async (request, reply) => {
      // The console must not be framed by another site (clickjacking its buttons); no response is sniffed into another type.
      void reply.header("x-content-type-options", "nosniff").header("x-frame-options", "DENY").header("referrer-policy", "no-referrer");
      const path = request.url.split("?")[0];
      if (path === "/" || path === "/index.html")
        void reply.header(
          "content-security-policy",
          "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        );
    });

    app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
    app.get("/readyz", { schema: { hide: true } }, async (_request, reply) => {
      const ready = await options.ready();
      return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready" });
    });
    app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
      const { contentType, body } = await options.metrics();
      return reply.type(contentType).send(body);
    });
    this.#ready = this.#register(options);
  }

  async #register(options: RestServerOptions): Promise<void> {
    const app = this.#app;
    await app.register(fastifySwagger, {
      openapi: {
        openapi: "3.1.0",
        info: {
          title: "lacewing-manager",
          version: "1",
          description:
            "Preheat jobs, and the clusters, schedulers, hosts and tasks the schedulers know. Send `Authorization: Bearer <token>` when the manager has a token; bodies are `application/json`.",
        },
        components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
        security: [{ bearer: [] }],
      },
    });
    await app.register(
      async (api) => {
        registerApiRoutes(api.withTypeProvider<TypeBoxTypeProvider>(), options.api);
        api.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
      },
      { prefix: "/api/v1" },
    );
    await app.register(fastifySwaggerUi, { routePrefix: "/api/v1/docs", staticCSP: true });
    if (options.consoleDirs !== undefined && options.consoleDirs.length > 0)
      await app.register(fastifyStatic, { root: [...options.consoleDirs], prefix: "/", index: "index.html", wildcard: true, cacheControl: false });
    await app.ready();
  }

  /** The OpenAPI document, as served at /api/v1/openapi.json. */
  async openapi(): Promise<unknown> {
    await this.#ready;
    return this.#app.swagger();
  }

  /** Binds host:port and returns the port. */
  async listen(host: string, port: number): Promise<number> {
    await this.#ready;
    await this.#app.listen({ host, port });
    const bound = (this.#app.server.address() as AddressInfo).port;
    this.#hostAllowList = hostAllowList(host, bound, this.#options.allowedHosts);
    return bound;
  }

  async close(): Promise<void> {
    await this.#ready?.catch(() => undefined);
    if (!this.#app.server.listening) return;
    this.#app.server.closeAllConnections();
    await this.#app.close();
  }

  /**
   * The browser guards, before routing, parsing or validation, on every path
   * (unknown ones included): a foreign Origin, then (probes excepted) the
   * Host without a token, the token under /api/, and the body's media type.
   */
  async #guard(request: FastifyRequest): Promise<void> {
    const url = requestUrl(request.raw.url);
    // Every path, in every mode: no CORS header is ever sent either, so a browser page elsewhere gets nothing.
    refuseCrossOrigin(request);
    // Probes and Prometheus scrape without credentials; they reveal no job data.
    // They also skip the Host check: Kubernetes probes and scrapes address the
    // pod by IP (Host: <pod IP>:<port>), which no allow-list can know in advance.
    if (request.method === "GET" && PROBES.has(url.pathname)) return;
    this.#checkHost(request);
    if (url.pathname.startsWith("/api/") && !PUBLIC_API.test(url.pathname)) this.#authenticate(request);
    requireJsonBody(request);
  }

  /**
   * Without a token the API trusts whoever reaches it, and it listens on
   * loopback only, but a browser reaches loopback too: a page whose name the
   * attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin with the
   * manager and could drive it. Its requests carry the attacker's name as
   * Host, so only the names this manager listens under are answered. With a
   * token, a page reaching the API under any name still cannot authenticate.
   */
  #checkHost(request: FastifyRequest): void {
    if (this.#options.token !== "") return;
    const host = request.headers.host;
    if (isAllowedHost(host, this.#hostAllowList)) return;
    throw new LacewingError(
      HttpRefusal.misdirectedRequest,
      "permission_denied",
      `this manager does not answer to Host ${JSON.stringify((host ?? "").slice(0, 100))} without a token; list it in allowedHosts (--allowed-hosts)`,
    );
  }

  #authenticate(request: FastifyRequest): void {
    if (this.#options.token === "") return;
    const header = request.headers.authorization ?? "";
    const presented = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
    const expected = Buffer.from(this.#options.token);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
      throw new LacewingError(ErrorCode.managerUnauthenticated, "unauthenticated", "missing or wrong bearer token");
  }

  #sendError(reply: FastifyReply, err: unknown, request: FastifyRequest | undefined): void {
    const { status, body } = toHttpError(err);
    if (status >= 500) this.#options.logger.error({ err: errorMessage(err), method: request?.method, path: request?.url.split("?")[0] }, "request failed");
    void reply.code(status).type("application/json; charset=utf-8").send(body);
  }
}

/** Fastify's own refusals of a body (parsing, size, media type) in the API's terms; anything else passes as it is. */
function fromFastifyError(err: unknown): unknown {
  if (err instanceof LacewingError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("FST_ERR_CTP_")) return err;
  if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
    return new LacewingError(HttpRefusal.unsupportedMediaType, "invalid_argument", "body: Content-Type must be application/json", {
      details: { field: "body" },
    });
  const problem = code === "FST_ERR_CTP_BODY_TOO_LARGE" ? "larger than 1 MiB" : code.includes("JSON") ? "not valid JSON" : "unreadable";
  return new LacewingError(ErrorCode.managerInvalidArgument, "invalid_argument", `body: ${problem}`, { details: { field: "body" } });
}

function refuseCrossOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin === undefined || isSameOrigin(origin, request.headers.host)) return;
  throw new LacewingError(HttpRefusal.crossOrigin, "permission_denied", "cross-origin requests are refused: the API is for scripts, not browsers");
}

/**
 * A body must say it is JSON. A browser sends text/plain, form and multipart
 * bodies cross-site without asking first; application/json makes it ask (a
 * CORS preflight), and that question is refused above.
 */
function requireJsonBody(request: FastifyRequest): void {
  if (!BODY_METHODS.has(request.method)) return;
  const type = request.headers["content-type"] ?? "";
  if (type.split(";")[0]?.trim().toLowerCase() === "application/json") return;
  throw new LacewingError(
    HttpRefusal.unsupportedMediaType,
    "invalid_argument",
    `body: Content-Type must be application/json, got ${type === "" ? "none" : JSON.stringify(type.slice(0, 100))}`,
    { details: { field: "body" } },
  );
}

/**
 * The request target as a URL. An absolute-form target such as `http://[/`
 * makes URL throw; it is a bad request, not a crash.
 */
function requestUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? "/", "http://manager");
  } catch {
    throw new LacewingError(ErrorCode.managerInvalidArgument, "invalid_argument", "path: not a valid request target", { details: { field: "path" } });
  }
}
