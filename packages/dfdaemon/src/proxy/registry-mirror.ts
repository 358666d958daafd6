import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { boundPort, closeServer, errorMessage, listenOn, taskIdOf, type Logger } from "@lacewing/common";
import type { OpenTask, TaskManager } from "../download/task-manager.js";
import type { DfdaemonMetrics } from "../metrics.js";
import type { TaskStore } from "../storage/task-store.js";
import { streamBlob, waitForLength, type BlobOutcome } from "./blob-stream.js";
import { routeRequest, type RegistryRoute, type RouteOptions, type RouteRejection } from "./registry-route.js";
import { createOriginAgent, type OriginPolicy } from "../source/origin-policy.js";
import { forwardRequest, forwardableHeaders, mayRead, type UpstreamCall } from "./upstream.js";

export interface RegistryMirrorOptions {
  tasks: TaskManager;
  store: TaskStore;
  metrics: DfdaemonMetrics;
  log: Logger;
  route: RouteOptions;
  /** No new piece for this long and a blob is served from the upstream instead. */
  stallTimeoutMs: number;
  /** Which addresses registries and their redirects may lead to. */
  policy: OriginPolicy;
}

type Kind = "blob" | "manifest" | "other";

/**
 * The registry mirror containerd pulls through (`hosts.toml` host entry).
 * Blob GETs become P2P tasks keyed by the blob digest and stream to the
 * client as pieces land; everything else is forwarded to the upstream named
 * by containerd's `ns` parameter. See docs/ARCHITECTURE.md, "Registry
 * mirror", for the auth and fallback rules.
 */
export class RegistryMirror {
  readonly #options: RegistryMirrorOptions;
  readonly #server: Server;
  // Its own connection pool: registry traffic must not queue behind piece traffic.
  readonly #agent;

  constructor(options: RegistryMirrorOptions) {
    this.#options = options;
    this.#agent = createOriginAgent(options.policy, { connections: 64 });
    this.#server = createServer({ keepAliveTimeout: 30_000 }, (request, response) => this.#handle(request, response));
  }

  get port(): number {
    return boundPort(this.#server);
  }

  async listen(host: string, port: number): Promise<number> {
    return listenOn(this.#server, host, port);
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
    // destroy, not close: close waits for requests still in flight, and shutdown must not.
    await this.#agent.destroy();
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    // Mirror requests carry no body; a client that resets mid-request must not raise an unhandled error.
    request.on("error", () => undefined);
    request.resume();
    const route = routeRequest(request.method, request.url, this.#options.route);
    if (route.kind === "rejected") {
      this.#count("other", "rejected");
      this.#options.log.debug({ status: route.status, code: route.code, reason: route.message }, "registry mirror request rejected");
      replyError(response, route);
      return;
    }
    const cancel = new AbortController();
    response.once("close", () => {
      if (!response.writableFinished) cancel.abort();
    });
    const call: UpstreamCall = { dispatcher: this.#agent, policy: this.#options.policy, signal: cancel.signal };
    const handled =
      route.kind === "blob" && route.method === "GET" ? this.#serveBlob(route, request, response, call) : this.#forward(route, request, response, call);
    handled.catch((err: unknown) => {
      this.#count(route.kind, "error");
      this.#options.log.warn({ kind: route.kind, registry: route.upstream.registry, err: errorMessage(err) }, "registry mirror request failed");
      if (!response.headersSent) replyError(response, { status: 502, code: "UNAVAILABLE", message: `cannot reach registry ${route.upstream.registry}` });
      else response.destroy();
    });
  }

  async #forward(route: RegistryRoute, request: IncomingMessage, response: ServerResponse, call: UpstreamCall): Promise<void> {
    const url = `${route.upstream.origin}${route.path}${route.search}`;
    const status = await forwardRequest(route.method, url, forwardableHeaders(request.headers), response, call);
    this.#count(route.kind, status < 400 ? "forwarded" : `upstream_${status}`);
  }

  /**
   * A blob GET. The upstream is first asked (HEAD, with the client's
   * credentials) whether this client may read the blob; only then is it
   * served through P2P. A client the upstream turns away gets the
   * upstream's own answer, so a 401 with its Bearer challenge reaches
   * containerd unchanged and the token flow runs as without a mirror.
   */
  async #serveBlob(route: Extract<RegistryRoute, { kind: "blob" }>, request: IncomingMessage, response: ServerResponse, call: UpstreamCall): Promise<void> {
    const { tasks, store, log, stallTimeoutMs } = this.#options;
    const url = `${route.upstream.origin}${route.path}`;
    const authorization = request.headers.authorization;
    if (!(await mayRead(url, authorization, call))) {
      const status = await forwardRequest("GET", url, forwardableHeaders(request.headers), response, call);
      this.#count("blob", `upstream_${status}`);
      return;
    }
    // A blob this node cached from another registry is served only to a client that registry accepts too; otherwise the asked registry serves it.
    const cached = store.get(taskIdOf({ url }));
    if (cached !== undefined && new URL(cached.url).origin !== route.upstream.origin && !(await mayRead(cached.url, authorization, call))) {
      await forwardRequest("GET", url, forwardableHeaders(request.headers), response, call);
      this.#count("blob", "forwarded");
      return;
    }
    // A range is served from the cache only once the whole blob is stored and matched its digest; until then the registry serves it.
    if (request.headers.range !== undefined && cached?.finished !== true) {
      const status = await forwardRequest("GET", url, forwardableHeaders(request.headers), response, call);
      this.#count("blob", status < 400 ? "forwarded" : `upstream_${status}`);
      return;
    }
    let opened: OpenTask;
    try {
      opened = await tasks.open({
        url,
        tag: "",
        application: "",
        filteredQueryParams: [],
        requestHeaders: authorization === undefined ? {} : { authorization },
        digest: route.digest,
        pieceLength: 0,
        outputPath: "",
        timeoutMs: 0,
      });
      await waitForLength(opened, call.signal, stallTimeoutMs);
    } catch (err) {
      if (call.signal.aborted) return this.#count("blob", "aborted");
      // Nothing is written yet: the client gets the upstream's own response.
      log.warn({ digest: route.digest, registry: route.upstream.registry, err: errorMessage(err) }, "P2P path failed; serving the blob from the registry");
      this.#options.metrics.backToSource.inc({ reason: "proxy" });
      await forwardRequest("GET", url, forwardableHeaders(request.headers), response, call);
      return this.#count("blob", "fallback");
    }
    const outcome: BlobOutcome = await streamBlob(
      response,
      {
        opened,
        digest: route.digest,
        url,
        authorization,
        range: request.headers.range,
        stallTimeoutMs,
        call,
        log,
        dropTask: (taskId) => store.delete(taskId),
      },
      call.signal,
    );
    if (outcome === "fallback") this.#options.metrics.backToSource.inc({ reason: "proxy" });
    this.#count("blob", outcome);
    // The body lacks its last chunk: cutting the connection makes the client see a broken transfer.
    if (outcome === "digest_mismatch") response.destroy();
  }

  #count(kind: Kind, result: string): void {
    this.#options.metrics.proxyRequests.inc({ kind, result });
  }
}

function replyError(response: ServerResponse, error: Pick<RouteRejection, "status" | "message"> & { code: string }): void {
  const body = JSON.stringify({ errors: [{ code: error.code, message: error.message, detail: null }] });
  response.writeHead(error.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
}
