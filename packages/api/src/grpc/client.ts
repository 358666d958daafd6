import type { DescService } from "@bufbuild/protobuf";
import {
  Client,
  Metadata,
  credentials,
  type CallOptions as GrpcCallOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientWritableStream,
  type ChannelCredentials,
  type ChannelOptions,
} from "@grpc/grpc-js";
import { identityOfPeerCertificate, type Role, type Security } from "@lacewing/common";
import type { PeerCertificate } from "node:tls";
import { deserializer, methodPath, serializer } from "./definition.js";
import { fromServiceError } from "./status.js";
import type { CallOptions, ServiceClient } from "./types.js";

export interface RpcClientOptions {
  /** TLS with this process's certificate, or insecure; unix sockets are always plain. */
  security: Security;
  /**
   * With TLS: the roles the server's certificate must carry. The cluster's
   * processes are reached by IP, which no certificate can name ahead of
   * time, so the server is checked for what it is (a scheduler, a peer),
   * signed by the cluster CA, instead of for a host name.
   */
  serverRoles: readonly Role[];
  /** With TLS: told the subject of each server certificate the channel accepts (on every handshake). */
  onServerSubject?: (subject: string) => void;
  /** Largest message in bytes, both ways. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

/** A typed client plus the channel it owns. */
export type RpcClient<S extends DescService> = ServiceClient<S> & {
  /** Closes the channel; calls in flight fail. */
  close(): void;
  /** Resolves once the channel is connected, rejects after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void>;
};

/**
 * Creates a typed client for `service` at `address` (`host:port`,
 * `dns:name:port` or `unix:/path`). Every method returns a promise or an
 * async iterable; errors are `RpcError`s.
 */
export function createClient<S extends DescService>(service: S, address: string, options: RpcClientOptions): RpcClient<S> {
  const max = options.maxMessageBytes ?? 16 * 1024 * 1024;
  const client = new Client(address, channelCredentials(address, options), {
    "grpc.max_receive_message_length": max,
    "grpc.max_send_message_length": max,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 5_000,
    // Servers are checked by role, not by name (see serverRoles); a fixed name also keeps an IP out of TLS SNI.
    ...(options.security.mode === "tls" ? { "grpc.ssl_target_name_override": "lacewing" } : {}),
    ...options.channelOptions,
  });
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    const path = methodPath(service, method.name);
    const serialize = serializer(method.input) as (value: unknown) => Buffer;
    const deserialize = deserializer(method.output);
    switch (method.methodKind) {
      case "unary":
        methods[method.localName] = (request: unknown, callOptions: CallOptions = {}) =>
          new Promise((resolve, reject) => {
            const { metadata, grpcOptions } = prepare(callOptions);
            let detach = (): void => undefined;
            const call = client.makeUnaryRequest(path, serialize, deserialize, request, metadata, grpcOptions, (err, response) => {
              detach();
              if (err) reject(fromServiceError(err));
              else resolve(response);
            });
            detach = onAbort(callOptions.signal, () => call.cancel());
          });
        break;
      case "server_streaming":
        methods[method.localName] = (request: unknown, callOptions: CallOptions = {}) => {
          const { metadata, grpcOptions } = prepare(callOptions);
          const call = client.makeServerStreamRequest(path, serialize, deserialize, request, metadata, grpcOptions);
          return readAll(
            call,
            onAbort(callOptions.signal, () => call.cancel()),
          );
        };
        break;
      case "client_streaming":
        methods[method.localName] = (requests: AsyncIterable<unknown>, callOptions: CallOptions = {}) =>
          new Promise((resolve, reject) => {
            const { metadata, grpcOptions } = prepare(callOptions);
            let detach = (): void => undefined;
            const call = client.makeClientStreamRequest(path, serialize, deserialize, metadata, grpcOptions, (err, response) => {
              detach();
              if (err) reject(fromServiceError(err));
              else resolve(response);
            });
            detach = onAbort(callOptions.signal, () => call.cancel());
            void writeAll(call, requests);
          });
        break;
      case "bidi_streaming":
        methods[method.localName] = (requests: AsyncIterable<unknown>, callOptions: CallOptions = {}) => {
          const { metadata, grpcOptions } = prepare(callOptions);
          const call = client.makeBidiStreamRequest(path, serialize, deserialize, metadata, grpcOptions);
          void writeAll(call, requests);
          return readAll(
            call,
            onAbort(callOptions.signal, () => call.cancel()),
          );
        };
        break;
    }
  }
  methods["close"] = () => client.close();
  methods["waitForReady"] = (timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(fromServiceError(err)) : resolve()));
    });
  return methods as RpcClient<S>;
}

/** A client of a service on a unix socket (the daemon's local API): guarded by the socket's file permissions, never TLS. */
export function createUnixClient<S extends DescService>(
  service: S,
  socketPath: string,
  options: Omit<RpcClientOptions, "security" | "serverRoles"> = {},
): RpcClient<S> {
  return createClient(service, `unix:${socketPath}`, { ...options, security: { mode: "insecure" }, serverRoles: [] });
}

function channelCredentials(address: string, options: RpcClientOptions): ChannelCredentials {
  const { security, serverRoles, onServerSubject } = options;
  if (security.mode === "insecure" || address.startsWith("unix:")) return credentials.createInsecure();
  const { ca, cert, key } = security.material;
  return credentials.createSsl(ca, key, cert, {
    checkServerIdentity: (_host, certificate) => {
      const problem = checkServerRole(certificate, serverRoles);
      if (problem === undefined) onServerSubject?.(identityOfPeerCertificate(certificate)?.subject ?? "");
      return problem;
    },
  });
}

/** Undefined when the server's certificate names one of `roles`; the reason otherwise. */
export function checkServerRole(certificate: PeerCertificate, roles: readonly Role[]): Error | undefined {
  const identity = identityOfPeerCertificate(certificate);
  if (identity !== undefined && roles.includes(identity.role)) return undefined;
  return new Error(`the server's certificate is ${identity === undefined ? "no Lacewing identity" : `a ${identity.role}'s`}; expected a ${roles.join(" or ")}`);
}

function prepare(options: CallOptions): { metadata: Metadata; grpcOptions: GrpcCallOptions } {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
  const grpcOptions: GrpcCallOptions = {};
  if (options.timeoutMs !== undefined) grpcOptions.deadline = Date.now() + options.timeoutMs;
  return { metadata, grpcOptions };
}

/** Cancels the call when `signal` aborts; returns the function that unhooks it. */
function onAbort(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    queueMicrotask(cancel);
    return () => undefined;
  }
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

async function* readAll(call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>, detach: () => void): AsyncIterable<unknown> {
  try {
    for await (const message of call) yield message;
  } catch (err) {
    throw fromServiceError(err);
  } finally {
    detach();
    // The consumer stopped early: cancel so the server stops producing.
    call.cancel();
  }
}

async function writeAll(call: ClientWritableStream<unknown> | ClientDuplexStream<unknown, unknown>, requests: AsyncIterable<unknown>): Promise<void> {
  try {
    for await (const request of requests) {
      if (call.destroyed) return;
      if (!call.write(request)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            call.off("drain", done);
            call.off("close", done);
            resolve();
          };
          call.on("drain", done);
          call.on("close", done);
        });
      }
    }
    call.end();
  } catch {
    // The request source failed: abandon the call; the reader sees CANCELLED.
    call.cancel();
  }
}
