import { Metadata, status as GrpcStatus, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import {
  LacewingError,
  RPC_STATUS_NAMES,
  isAbortError,
  isErrorCode,
  type ErrorCode,
  type ErrorKind,
  type LacewingErrorOptions,
  type RpcErrorCode,
} from "@lacewing/common";

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
  /**
   * True when no Lacewing process chose the code: the call failed in
   * transport (grpc-js's own status: no server, deadline, reset). Such an
   * error's code is `LW_ERR_RPC_<STATUS>`.
   */
  readonly transport: boolean;

  constructor(status: GrpcStatus, message: string, code?: ErrorCode, options: LacewingErrorOptions = {}) {
    const kind = statusToKind.get(status) ?? "internal";
    super(code ?? rpcCodeOf(status), kind, message, options);
    this.name = "RpcError";
    this.status = status;
    this.transport = code === undefined;
  }
}

function rpcCodeOf(status: GrpcStatus): RpcErrorCode {
  const name = RPC_STATUS_NAMES.find((candidate) => GrpcStatus[candidate] === status);
  return `LW_ERR_RPC_${name ?? "UNKNOWN"}`;
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
    const label = serviceError.metadata?.get(ERROR_CODE_KEY)[0];
    const message = serviceError.details ?? serviceError.message ?? "rpc failed";
    if (typeof label !== "string") return new RpcError(serviceError.code, message, undefined, { cause: err });
    // A code this version does not know (a newer peer's): the status stands for it, the label stays in the details.
    if (!isErrorCode(label)) return new RpcError(serviceError.code, message, rpcCodeOf(serviceError.code), { cause: err, details: { remoteCode: label } });
    return new RpcError(serviceError.code, message, label, { cause: err });
  }
  if (isAbortError(err)) return new RpcError(GrpcStatus.CANCELLED, "cancelled", undefined, { cause: err });
  return new RpcError(GrpcStatus.UNKNOWN, err instanceof Error ? err.message : String(err), undefined, { cause: err });
}

export { GrpcStatus };
