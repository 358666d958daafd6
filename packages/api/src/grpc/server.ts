import { once, type EventEmitter } from "node:events";
import type { DescService } from "@bufbuild/protobuf";
import {
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
  type sendUnaryData,
  type ServiceError,
} from "@grpc/grpc-js";
import { identityOfPeerCertificate, type Security } from "@lacewing/common";
import { toServiceDefinition } from "./definition.js";
import { toStatus } from "./status.js";
import type { CallContext, ServiceImpl } from "./types.js";

type AnyCall =
  ServerUnaryCall<unknown, unknown> | ServerReadableStream<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;
type AnyHandler = (input: unknown, context: CallContext) => unknown;

export interface RpcServerOptions {
  /**
   * TLS with client certificates of the cluster CA (handlers see the
   * caller's identity), or insecure. Asked for on every server so that no
   * listener is open by default.
   */
  security: Security;
  /** Largest message in bytes, both ways. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Concurrent calls on one client connection; more wait. Default 1000. */
  maxConcurrentStreams?: number;
}

/**
 * A grpc-js server that hosts protobuf-es services. Handlers are async
 * functions and async iterables; they never see grpc-js callbacks.
 */
export class RpcServer {
  readonly #server: Server;
  readonly #security: Security;

  constructor(options: RpcServerOptions) {
    const max = options.maxMessageBytes ?? 16 * 1024 * 1024;
    this.#security = options.security;
    this.#server = new Server({
      "grpc.max_receive_message_length": max,
      "grpc.max_send_message_length": max,
      "grpc.max_concurrent_streams": options.maxConcurrentStreams ?? 1000,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 10_000,
      // A connection that carries no call for this long is closed: idle clients cost nothing for good.
      "grpc.max_connection_idle_ms": 5 * 60_000,
    });
  }

  add<S extends DescService>(service: S, impl: ServiceImpl<S>): this {
    const handlers: UntypedServiceImplementation = {};
    const byName = impl as unknown as Record<string, AnyHandler>;
    const contextOf = (call: AnyCall): CallContext => callContext(call, this.#security.mode === "tls");
    for (const method of service.methods) {
      const handler = byName[method.localName];
      if (handler === undefined) throw new Error(`missing handler for ${service.typeName}.${method.name}`);
      const fn = handler.bind(impl);
      switch (method.methodKind) {
        case "unary":
          handlers[method.localName] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
            respondOnce(call, callback, () => fn(call.request, contextOf(call)));
          };
          break;
        case "client_streaming":
          handlers[method.localName] = (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
            respondOnce(call, callback, () => fn(messagesOf(call), contextOf(call)));
          };
          break;
        case "server_streaming":
          handlers[method.localName] = (call: ServerWritableStream<unknown, unknown>) => {
            void pipeStream(call, () => fn(call.request, contextOf(call)) as AsyncIterable<unknown>);
          };
          break;
        case "bidi_streaming":
          handlers[method.localName] = (call: ServerDuplexStream<unknown, unknown>) => {
            void pipeStream(call, () => fn(messagesOf(call), contextOf(call)) as AsyncIterable<unknown>);
          };
          break;
      }
    }
    this.#server.addService(toServiceDefinition(service), handlers);
    return this;
  }

  /**
   * Binds `host:port` (port 0 picks one) or `unix:/path`, and returns the
   * bound port (0 for unix sockets).
   */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(address, this.#credentials(), (err, port) => {
        if (err) reject(err);
        else resolve(port);
      });
    });
  }

  #credentials(): ServerCredentials {
    if (this.#security.mode === "insecure") return ServerCredentials.createInsecure();
    const { ca, cert, key } = this.#security.material;
    return ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true);
  }

  /** Stops accepting calls, waits up to `graceMs` for running ones, then cuts them. */
  async close(graceMs = 2_000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function callContext(call: AnyCall, secure: boolean): CallContext {
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error("call cancelled"));
  const events = call as unknown as EventEmitter;
  events.once("cancelled", abort);
  // A finished stream must not hold the listener.
  events.once("close", () => events.removeListener("cancelled", abort));
  // The handshake already checked the chain against the cluster CA; the subject says the role.
  const certificate = secure ? call.getAuthContext().sslPeerCertificate : undefined;
  const caller = identityOfPeerCertificate(certificate);
  return { signal: controller.signal, metadata: call.metadata, peer: call.getPeer(), secure, caller };
}

/**
 * The request messages of a streaming call. A plain `for await` over the
 * call would destroy it when the requests end, before the status is sent.
 */
function messagesOf(call: ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>): AsyncIterable<unknown> {
  return call.iterator({ destroyOnReturn: false });
}

function respondOnce(call: AnyCall, callback: sendUnaryData<unknown>, run: () => unknown): void {
  Promise.resolve()
    .then(run)
    .then(
      (response) => callback(null, response),
      (err: unknown) => callback(toStatus(err) as ServiceError),
    )
    .catch(() => {
      // The callback itself threw (call already gone); nothing left to report.
    });
  void call;
}

type StreamCall = ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

async function pipeStream(call: StreamCall, run: () => AsyncIterable<unknown>): Promise<void> {
  try {
    for await (const message of run()) {
      if (call.cancelled || call.destroyed) return;
      if (!call.write(message)) await drained(call);
    }
    call.end();
  } catch (err) {
    // grpc-js turns an 'error' event on a server stream into the call's status.
    if (!call.cancelled && !call.destroyed) call.emit("error", toStatus(err));
  }
}

/** Resolves when the stream can take more, or when it is gone. */
async function drained(call: StreamCall): Promise<void> {
  const controller = new AbortController();
  try {
    await Promise.race([
      once(call, "drain", { signal: controller.signal }),
      once(call, "close", { signal: controller.signal }),
      once(call, "cancelled", { signal: controller.signal }),
    ]);
  } finally {
    controller.abort();
  }
}
