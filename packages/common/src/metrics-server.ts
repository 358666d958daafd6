import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import { closeServer, listenOn } from "./listener.js";

/** Serves /metrics, /healthz and /readyz over plain HTTP. */
export class MetricsServer {
  readonly #server: Server;
  #port = 0;

  constructor(registry: Registry, isReady: () => boolean) {
    this.#server = createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0];
      if (request.method !== "GET" && request.method !== "HEAD") {
        response.writeHead(405).end();
        return;
      }
      if (path === "/healthz") {
        response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else if (path === "/readyz") {
        const ready = isReady();
        response.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ready\n" : "not ready\n");
      } else if (path === "/metrics") {
        registry.metrics().then(
          (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
          () => response.writeHead(500).end(),
        );
      } else {
        response.writeHead(404).end();
      }
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(host: string, port: number): Promise<number> {
    this.#port = await listenOn(this.#server, host, port);
    return this.#port;
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
  }
}
