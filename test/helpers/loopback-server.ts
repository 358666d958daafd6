import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { boundPort, closeServer, listenOn } from "@lacewing/common";

/** A test HTTP server on a free loopback port; a subclass answers each request in `handle`. */
export abstract class LoopbackHttpServer {
  readonly #server = createServer((req, res) => this.handle(req, res));

  protected abstract handle(req: IncomingMessage, res: ServerResponse): void;

  /** Listens and resolves with `host`. */
  async start(): Promise<string> {
    await listenOn(this.#server, "127.0.0.1", 0);
    return this.host;
  }

  /** `127.0.0.1:PORT`. */
  get host(): string {
    return `127.0.0.1:${boundPort(this.#server)}`;
  }

  /** Closes the server and every connection on it. */
  close(): Promise<void> {
    return closeServer(this.#server);
  }
}
