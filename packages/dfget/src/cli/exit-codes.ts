import { GrpcStatus, RpcError } from "@lacewing/api/dfdaemon-client";
import { LacewingError, errorMessage } from "@lacewing/common";

/** dfget's exit codes; documented in the package README. */
export const ExitCode = {
  ok: 0,
  /** The download failed for any other reason (origin 4xx/5xx, no parents and no back-to-source, …). */
  failure: 1,
  /** Bad URL, digest syntax, header, flag or config value. */
  usage: 2,
  /** No dfdaemon on the socket. */
  noDaemon: 3,
  timeout: 4,
  digestMismatch: 5,
  /** The output file cannot be written. */
  outputNotWritable: 6,
  /** Interrupted with Ctrl-C (128 + SIGINT). */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What the user sees of a failure: exit code, stable code for --json, one-line message. */
export interface Failure {
  exitCode: ExitCodeValue;
  code: string;
  message: string;
}

export interface FailureContext {
  /** The daemon socket, for the "how to start a daemon" hint. */
  socket: string;
}

/** Error codes, raised locally or by the daemon, that have their own exit code. */
const BY_CODE: Record<string, ExitCodeValue> = {
  LW_ERR_USAGE: ExitCode.usage,
  LW_ERR_CONFIG: ExitCode.usage,
  LW_ERR_BAD_URL: ExitCode.usage,
  LW_ERR_BAD_DIGEST: ExitCode.usage,
  LW_ERR_BAD_HEADER: ExitCode.usage,
  LW_ERR_NO_DAEMON: ExitCode.noDaemon,
  LW_ERR_TIMEOUT: ExitCode.timeout,
  LW_ERR_DIGEST_MISMATCH: ExitCode.digestMismatch,
  LW_ERR_OUTPUT: ExitCode.outputNotWritable,
  LW_ERR_CANCELLED: ExitCode.interrupted,
};

/**
 * The one place where an error becomes an exit code and a message. Order
 * matters: a code the daemon chose wins over the gRPC status it travelled
 * with, and transport failures (an RpcError the daemon did not label) are
 * recognised by status.
 */
export function describeFailure(err: unknown, context: FailureContext): Failure {
  if (!(err instanceof LacewingError)) {
    return { exitCode: ExitCode.failure, code: "LW_ERR_INTERNAL", message: errorMessage(err) };
  }
  const byCode = BY_CODE[err.code];
  if (byCode !== undefined) {
    const message = byCode === ExitCode.noDaemon ? noDaemonMessage(context.socket, err.message) : err.message;
    return { exitCode: byCode, code: err.code, message };
  }
  if (err instanceof RpcError && isTransportError(err)) {
    switch (err.status) {
      case GrpcStatus.UNAVAILABLE:
        return { exitCode: ExitCode.noDaemon, code: "LW_ERR_NO_DAEMON", message: noDaemonMessage(context.socket, err.message) };
      case GrpcStatus.DEADLINE_EXCEEDED:
        return { exitCode: ExitCode.timeout, code: "LW_ERR_TIMEOUT", message: "download timed out" };
      case GrpcStatus.UNIMPLEMENTED:
        return { exitCode: ExitCode.failure, code: err.code, message: `the process on ${context.socket} does not serve the dfdaemon download API` };
    }
  }
  switch (err.kind) {
    case "deadline_exceeded":
      return { exitCode: ExitCode.timeout, code: err.code, message: err.message };
    case "invalid_argument":
      return { exitCode: ExitCode.usage, code: err.code, message: err.message };
    default:
      return { exitCode: ExitCode.failure, code: err.code, message: err.message };
  }
}

/** The daemon labels every error it raises; an unlabelled status came from grpc-js itself. */
function isTransportError(err: RpcError): boolean {
  return err.code.startsWith("LW_ERR_RPC_");
}

const ERRNO_REASONS: Record<string, string> = {
  ENOENT: "no such socket",
  ECONNREFUSED: "connection refused",
  EACCES: "permission denied",
  ENOTSOCK: "not a socket",
};

function noDaemonMessage(socket: string, detail: string): string {
  const errno = /\b(E[A-Z]{3,})\b/.exec(detail)?.[1];
  const reason = (errno === undefined ? undefined : ERRNO_REASONS[errno]) ?? detail;
  return (
    `no dfdaemon is listening on ${socket} (${reason}); start one with ` +
    `\`npx dfdaemon --scheduler HOST:PORT --data-dir DIR --advertise-ip IP --socket ${socket}\` ` +
    `or point dfget at a running one with --socket / DFGET_SOCKET`
  );
}
