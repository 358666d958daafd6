import { GrpcStatus, RpcError } from "@lacewing/api/dfdaemon-client";
import { ErrorCode, LacewingError, errorMessage, type ErrorKind, type RpcErrorCode } from "@lacewing/common";

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
  /** dfcache import: the file to import cannot be read. */
  inputNotReadable: 7,
  /** dfcache: no persistent cache task has this id. */
  cacheNotFound: 8,
  /** Interrupted with Ctrl-C (128 + SIGINT). */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What the user sees of a failure: exit code, stable code for --json, one-line message. */
export interface Failure {
  exitCode: ExitCodeValue;
  code: ErrorCode;
  message: string;
}

export interface FailureContext {
  /** The daemon socket, for the "how to start a daemon" hint. */
  socket: string;
  /** The command the hint names, and its socket variable; dfget's by default. */
  program?: { name: string; socketEnv: string };
}

/**
 * The exit code of every error code a Lacewing process raises, locally or
 * in the daemon (and the scheduler or manager behind it). Exhaustive: a new
 * code does not compile until it has one here (docs/ERROR-CODES.md lists
 * them, and a spec keeps the two in step).
 */
export const EXIT_CODE_OF = {
  LW_ERR_CONFIG: ExitCode.usage,
  LW_ERR_USAGE: ExitCode.usage,
  LW_ERR_BAD_REQUEST: ExitCode.usage,
  LW_ERR_BAD_URL: ExitCode.usage,
  LW_ERR_BAD_DIGEST: ExitCode.usage,
  LW_ERR_BAD_HEADER: ExitCode.usage,
  LW_ERR_TLS: ExitCode.failure,
  LW_ERR_PERMISSION_DENIED: ExitCode.failure,
  LW_ERR_LISTEN: ExitCode.failure,
  LW_ERR_UNIMPLEMENTED: ExitCode.failure,
  LW_ERR_CANCELLED: ExitCode.interrupted,
  LW_ERR_TIMEOUT: ExitCode.timeout,
  LW_ERR_INTERNAL: ExitCode.failure,
  LW_ERR_NO_DAEMON: ExitCode.noDaemon,
  LW_ERR_PROTOCOL: ExitCode.failure,
  LW_ERR_ORIGIN_STATUS: ExitCode.failure,
  LW_ERR_ORIGIN_PROTOCOL: ExitCode.failure,
  LW_ERR_ORIGIN_UNREACHABLE: ExitCode.failure,
  LW_ERR_ORIGIN_REFUSED: ExitCode.failure,
  LW_ERR_OBJECT_NOT_FOUND: ExitCode.failure,
  LW_ERR_OBJECT_ACCESS_DENIED: ExitCode.failure,
  LW_ERR_OBJECT_CHANGED: ExitCode.failure,
  LW_ERR_DIGEST_MISMATCH: ExitCode.digestMismatch,
  LW_ERR_OUTPUT: ExitCode.outputNotWritable,
  LW_ERR_DISK_FULL: ExitCode.failure,
  LW_ERR_STORAGE: ExitCode.failure,
  LW_ERR_NO_SOURCE: ExitCode.failure,
  LW_ERR_TASK_NOT_FOUND: ExitCode.failure,
  LW_ERR_PIECE_NOT_FOUND: ExitCode.failure,
  LW_ERR_TASK_BUSY: ExitCode.failure,
  LW_ERR_INPUT: ExitCode.inputNotReadable,
  LW_ERR_CACHE_NOT_FOUND: ExitCode.cacheNotFound,
  LW_ERR_CACHE_DELETED: ExitCode.failure,
  LW_ERR_UNSAFE_KEY: ExitCode.failure,
  LW_ERR_HOST_NOT_ANNOUNCED: ExitCode.failure,
  LW_ERR_NOT_REGISTERED: ExitCode.failure,
  LW_ERR_PEER_NOT_FOUND: ExitCode.failure,
  LW_ERR_PEER_GONE: ExitCode.failure,
  LW_ERR_TASK_MISMATCH: ExitCode.failure,
  LW_ERR_TASK_TAINTED: ExitCode.failure,
  LW_ERR_TOO_MANY_HOSTS: ExitCode.failure,
  LW_ERR_TOO_MANY_PEERS: ExitCode.failure,
  LW_ERR_NO_HOSTS: ExitCode.failure,
  LW_ERR_DATABASE: ExitCode.failure,
  LW_ERR_MANAGER_INVALID_ARGUMENT: ExitCode.usage,
  LW_ERR_MANAGER_NOT_FOUND: ExitCode.failure,
  LW_ERR_MANAGER_JOB_NOT_FOUND: ExitCode.failure,
  LW_ERR_MANAGER_UNAUTHENTICATED: ExitCode.failure,
  LW_ERR_MANAGER_CROSS_ORIGIN: ExitCode.failure,
  LW_ERR_MANAGER_MISDIRECTED_REQUEST: ExitCode.failure,
  LW_ERR_MANAGER_UNSUPPORTED_MEDIA_TYPE: ExitCode.failure,
  LW_ERR_MANAGER_REGISTRY: ExitCode.failure,
  LW_ERR_MANAGER_REGISTRY_AUTH: ExitCode.failure,
  LW_ERR_MANAGER_NO_SCHEDULER: ExitCode.failure,
  LW_ERR_MANAGER_SCHEDULER_UNAVAILABLE: ExitCode.failure,
  LW_ERR_HUB_REPO_NOT_FOUND: ExitCode.failure,
  LW_ERR_HUB_REVISION_NOT_FOUND: ExitCode.failure,
  LW_ERR_HUB_ENTRY_NOT_FOUND: ExitCode.failure,
  LW_ERR_HUB_AUTH: ExitCode.failure,
  LW_ERR_HUB_UNAVAILABLE: ExitCode.failure,
} as const satisfies Record<Exclude<ErrorCode, RpcErrorCode>, ExitCodeValue>;

/** The exit code of a call that failed in transport or carried a code this dfget does not know, by its kind. */
const EXIT_CODE_OF_KIND: Record<ErrorKind, ExitCodeValue> = {
  invalid_argument: ExitCode.usage,
  deadline_exceeded: ExitCode.timeout,
  not_found: ExitCode.failure,
  already_exists: ExitCode.failure,
  permission_denied: ExitCode.failure,
  unauthenticated: ExitCode.failure,
  resource_exhausted: ExitCode.failure,
  failed_precondition: ExitCode.failure,
  aborted: ExitCode.failure,
  cancelled: ExitCode.failure,
  unavailable: ExitCode.failure,
  internal: ExitCode.failure,
};

function isLabelled(code: ErrorCode): code is keyof typeof EXIT_CODE_OF {
  return Object.hasOwn(EXIT_CODE_OF, code);
}

/**
 * The one place where an error becomes an exit code and a message. A code
 * a Lacewing process chose wins over the gRPC status it travelled with;
 * transport failures are recognised by their status.
 */
export function describeFailure(err: unknown, context: FailureContext): Failure {
  if (!(err instanceof LacewingError)) {
    return { exitCode: ExitCode.failure, code: ErrorCode.internal, message: errorMessage(err) };
  }
  if (isLabelled(err.code)) {
    const exitCode = EXIT_CODE_OF[err.code];
    const message = exitCode === ExitCode.noDaemon ? noDaemonMessage(context, err.message) : err.message;
    return { exitCode, code: err.code, message };
  }
  if (err instanceof RpcError && err.transport) {
    switch (err.status) {
      case GrpcStatus.UNAVAILABLE:
        return { exitCode: ExitCode.noDaemon, code: ErrorCode.noDaemon, message: noDaemonMessage(context, err.message) };
      case GrpcStatus.DEADLINE_EXCEEDED:
        return { exitCode: ExitCode.timeout, code: ErrorCode.timeout, message: "download timed out" };
      case GrpcStatus.UNIMPLEMENTED:
        return { exitCode: ExitCode.failure, code: err.code, message: `the process on ${context.socket} does not serve the dfdaemon download API` };
    }
  }
  return { exitCode: EXIT_CODE_OF_KIND[err.kind], code: err.code, message: err.message };
}

const ERRNO_REASONS: Record<string, string> = {
  ENOENT: "no such socket",
  ECONNREFUSED: "connection refused",
  EACCES: "permission denied",
  ENOTSOCK: "not a socket",
};

function noDaemonMessage(context: FailureContext, detail: string): string {
  const { socket } = context;
  const program = context.program ?? { name: "dfget", socketEnv: "DFGET_SOCKET" };
  const errno = /\b(E[A-Z]{3,})\b/.exec(detail)?.[1];
  const reason = (errno === undefined ? undefined : ERRNO_REASONS[errno]) ?? detail;
  return (
    `no dfdaemon is listening on ${socket} (${reason}); start one with ` +
    `\`npx dfdaemon --scheduler HOST:PORT --data-dir DIR --advertise-ip IP --socket ${socket}\` ` +
    `or point ${program.name} at a running one with --socket / ${program.socketEnv}`
  );
}
