import { Metadata, status as GrpcStatus, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { LacewingError, isAbortError, type ErrorKind } from "@lacewing/common";

const ERROR_CODE_KEY = "lw-error-code";

const kindToStatus: Record<ErrorKind, GrpcStatus> = {
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  not_found: GrpcStatus.NOT_FOUND,
  already_exists: GrpcStatus.ALREADY_EXISTS,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  aborted: GrpcStatus.ABORTED,
  cancelled: GrpcStatus.CANCELLED,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  unavailable: GrpcStatus.UNAVAILABLE,
  internal: GrpcStatus.INTERNAL,
};

const statusToKind = new Map<number, ErrorKind>(Object.entries(kindToStatus).map(([kind, code]) => [code, kind as ErrorKind]));
statusToKind.set(GrpcStatus.UNKNOWN, "internal");
statusToKind.set(GrpcStatus.UNIMPLEMENTED, "failed_precondition");
statusToKind.set(GrpcStatus.DATA_LOSS, "internal");
statusToKind.set(GrpcStatus.OUT_OF_RANGE, "invalid_argument");

/** An error that crossed a gRPC boundary, on either side. */
export class RpcError extends LacewingError {
  readonly status: GrpcStatus;

  constructor(status: GrpcStatus, message: string, code?: string, cause?: unknown) {
    const kind = statusToKind.get(status) ?? "internal";
    super(code ?? `LW_ERR_RPC_${GrpcStatus[status] ?? "UNKNOWN"}`, kind, message, { cause });
    this.name = "RpcError";
    this.status = status;
  }
}

/**
 * The one place where a thrown value becomes a gRPC status. Lacewing errors
 * keep their message and code; anything else is reported as an internal
 * error without its message, so internals never reach the wire.
 */
export function toStatus(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  if (err instanceof RpcError) {
    metadata.set(ERROR_CODE_KEY, err.code);
    return { code: err.status, details: err.message, metadata };
  }
  if (err instanceof LacewingError) {
    metadata.set(ERROR_CODE_KEY, err.code);
    return { code: kindToStatus[err.kind], details: err.message, metadata };
  }
  if (isAbortError(err)) return { code: GrpcStatus.CANCELLED, details: "cancelled", metadata };
  return { code: GrpcStatus.INTERNAL, details: "internal error", metadata };
}

/** The client-side view of a failed call. */
export function fromServiceError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  const serviceError = err as Partial<ServiceError>;
  if (typeof serviceError.code === "number") {
    const codeValue = serviceError.metadata?.get(ERROR_CODE_KEY)[0];
    const code = typeof codeValue === "string" ? codeValue : undefined;
    return new RpcError(serviceError.code, serviceError.details ?? serviceError.message ?? "rpc failed", code, err);
  }
  if (isAbortError(err)) return new RpcError(GrpcStatus.CANCELLED, "cancelled", undefined, err);
  return new RpcError(GrpcStatus.UNKNOWN, err instanceof Error ? err.message : String(err), undefined, err);
}

export { GrpcStatus };
