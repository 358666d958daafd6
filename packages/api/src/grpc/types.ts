import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { Metadata } from "@grpc/grpc-js";
import type { Identity } from "@lacewing/common";

type MethodOf<S extends DescService> = S["method"];

/** Per-call facts a handler receives: cancellation, deadline, metadata, caller. */
export interface CallContext {
  /** Aborted when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  readonly metadata: Metadata;
  /** Caller address as grpc-js reports it ("1.2.3.4:5678", "[::1]:5678"). */
  readonly peer: string;
  /** The server runs TLS with client certificates: `caller` is what the certificate proves. */
  readonly secure: boolean;
  /** The caller's cluster identity; undefined on an insecure server, or for a certificate naming no role. */
  readonly caller: Identity | undefined;
}

type Kinded<K extends string, I extends DescMessage, O extends DescMessage> = {
  methodKind: K;
  input: I;
  output: O;
};

type HandlerFor<M> =
  M extends Kinded<"unary", infer I, infer O>
    ? (request: MessageShape<I>, context: CallContext) => Promise<MessageInitShape<O>>
    : M extends Kinded<"server_streaming", infer I, infer O>
      ? (request: MessageShape<I>, context: CallContext) => AsyncIterable<MessageInitShape<O>>
      : M extends Kinded<"client_streaming", infer I, infer O>
        ? (requests: AsyncIterable<MessageShape<I>>, context: CallContext) => Promise<MessageInitShape<O>>
        : M extends Kinded<"bidi_streaming", infer I, infer O>
          ? (requests: AsyncIterable<MessageShape<I>>, context: CallContext) => AsyncIterable<MessageInitShape<O>>
          : never;

/** What a server implements for a service: one async function per method. */
export type ServiceImpl<S extends DescService> = {
  [K in keyof MethodOf<S>]: HandlerFor<MethodOf<S>[K]>;
};

/** Options of one client call. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Relative deadline in milliseconds. */
  timeoutMs?: number;
  metadata?: Record<string, string>;
}

type ClientMethodFor<M> =
  M extends Kinded<"unary", infer I, infer O>
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : M extends Kinded<"server_streaming", infer I, infer O>
      ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
      : M extends Kinded<"client_streaming", infer I, infer O>
        ? (requests: AsyncIterable<MessageInitShape<I>>, options?: CallOptions) => Promise<MessageShape<O>>
        : M extends Kinded<"bidi_streaming", infer I, infer O>
          ? (requests: AsyncIterable<MessageInitShape<I>>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
          : never;

/** A typed client: one async function per method. */
export type ServiceClient<S extends DescService> = {
  [K in keyof MethodOf<S>]: ClientMethodFor<MethodOf<S>[K]>;
};
