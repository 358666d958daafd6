/**
 * Every stable error code a Lacewing process raises: scripts read them
 * (`dfget --json`, the manager's REST errors, `lw-error-code` on gRPC), so a
 * code is never renamed. docs/ERROR-CODES.md says what each means and
 * dfget's exit code for it; a spec keeps that page complete.
 */
export const ErrorCode = {
  // Any process.
  /** A setting (flag, environment variable, YAML) is invalid. */
  config: "LW_ERR_CONFIG",
  /** A command line is invalid. */
  usage: "LW_ERR_USAGE",
  /** A request field is missing or invalid. */
  badRequest: "LW_ERR_BAD_REQUEST",
  badUrl: "LW_ERR_BAD_URL",
  badDigest: "LW_ERR_BAD_DIGEST",
  badHeader: "LW_ERR_BAD_HEADER",
  /** A certificate, key or CA bundle cannot be read or does not fit. */
  tls: "LW_ERR_TLS",
  /** The caller's certificate or token does not allow this call. */
  permissionDenied: "LW_ERR_PERMISSION_DENIED",
  /** A server cannot bind its address. */
  listen: "LW_ERR_LISTEN",
  /** The peer does not serve this method. */
  unimplemented: "LW_ERR_UNIMPLEMENTED",
  cancelled: "LW_ERR_CANCELLED",
  timeout: "LW_ERR_TIMEOUT",
  internal: "LW_ERR_INTERNAL",

  // dfget and the daemon.
  noDaemon: "LW_ERR_NO_DAEMON",
  /** The daemon broke the download API's contract (a stream ended without a result). */
  protocol: "LW_ERR_PROTOCOL",
  originStatus: "LW_ERR_ORIGIN_STATUS",
  originProtocol: "LW_ERR_ORIGIN_PROTOCOL",
  originUnreachable: "LW_ERR_ORIGIN_UNREACHABLE",
  /** The origin (or a redirect) names an address the daemon must not fetch from: see dfdaemon's source/origin-policy.ts. */
  originRefused: "LW_ERR_ORIGIN_REFUSED",
  /** An s3:// bucket or key that does not exist (the message says which). */
  objectNotFound: "LW_ERR_OBJECT_NOT_FOUND",
  /** The object store refused the credentials (unknown key id, wrong secret, no permission). */
  objectAccessDenied: "LW_ERR_OBJECT_ACCESS_DENIED",
  /** The object was overwritten after its version was pinned (an If-Match that no longer holds). */
  objectChanged: "LW_ERR_OBJECT_CHANGED",
  digestMismatch: "LW_ERR_DIGEST_MISMATCH",
  output: "LW_ERR_OUTPUT",
  diskFull: "LW_ERR_DISK_FULL",
  storage: "LW_ERR_STORAGE",
  noSource: "LW_ERR_NO_SOURCE",
  taskNotFound: "LW_ERR_TASK_NOT_FOUND",
  pieceNotFound: "LW_ERR_PIECE_NOT_FOUND",
  /** The task is being downloaded or read and cannot be evicted now. */
  taskBusy: "LW_ERR_TASK_BUSY",
  /** dfcache import: the file to import is missing, not a regular file, or unreadable. */
  input: "LW_ERR_INPUT",
  /** No persistent cache task has this id (dfcache export, stat, delete). */
  cacheNotFound: "LW_ERR_CACHE_NOT_FOUND",
  /** The persistent cache task was deleted (or expired) cluster-wide: a holder's copy is removed rather than announced. */
  cacheDeleted: "LW_ERR_CACHE_DELETED",
  /** A directory listing (dfget -r) names a file that cannot be written safely below the output directory: `../`, an absolute path, … */
  unsafeKey: "LW_ERR_UNSAFE_KEY",

  // The scheduler.
  hostNotAnnounced: "LW_ERR_HOST_NOT_ANNOUNCED",
  notRegistered: "LW_ERR_NOT_REGISTERED",
  peerNotFound: "LW_ERR_PEER_NOT_FOUND",
  peerGone: "LW_ERR_PEER_GONE",
  taskMismatch: "LW_ERR_TASK_MISMATCH",
  taskTainted: "LW_ERR_TASK_TAINTED",
  tooManyHosts: "LW_ERR_TOO_MANY_HOSTS",
  tooManyPeers: "LW_ERR_TOO_MANY_PEERS",
  noHosts: "LW_ERR_NO_HOSTS",

  // The manager.
  database: "LW_ERR_DATABASE",
  managerInvalidArgument: "LW_ERR_MANAGER_INVALID_ARGUMENT",
  managerNotFound: "LW_ERR_MANAGER_NOT_FOUND",
  managerJobNotFound: "LW_ERR_MANAGER_JOB_NOT_FOUND",
  managerUnauthenticated: "LW_ERR_MANAGER_UNAUTHENTICATED",
  managerCrossOrigin: "LW_ERR_MANAGER_CROSS_ORIGIN",
  managerMisdirectedRequest: "LW_ERR_MANAGER_MISDIRECTED_REQUEST",
  managerUnsupportedMediaType: "LW_ERR_MANAGER_UNSUPPORTED_MEDIA_TYPE",
  managerRegistry: "LW_ERR_MANAGER_REGISTRY",
  managerRegistryAuth: "LW_ERR_MANAGER_REGISTRY_AUTH",
  managerNoScheduler: "LW_ERR_MANAGER_NO_SCHEDULER",
  managerSchedulerUnavailable: "LW_ERR_MANAGER_SCHEDULER_UNAVAILABLE",

  // Model hubs (hf://), wherever they are resolved: dfget, the manager.
  /** The Hub has no such repository, or hides a private one from this token (its X-Error-Code RepoNotFound). */
  hubRepoNotFound: "LW_ERR_HUB_REPO_NOT_FOUND",
  /** The repository has no such branch, tag or commit (RevisionNotFound). */
  hubRevisionNotFound: "LW_ERR_HUB_REVISION_NOT_FOUND",
  /** The revision has no such file or directory (EntryNotFound). */
  hubEntryNotFound: "LW_ERR_HUB_ENTRY_NOT_FOUND",
  /** The Hub refused the token, asked for one, or the repository is gated. */
  hubAuth: "LW_ERR_HUB_AUTH",
  /** The Hub cannot be reached, failed (5xx, 429) or sent an answer that does not parse. */
  hubUnavailable: "LW_ERR_HUB_UNAVAILABLE",
} as const;

/** The gRPC status names, for the codes of calls that failed in transport (no peer chose a code). */
export const RPC_STATUS_NAMES = [
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** The code of a gRPC call that failed before any Lacewing process labelled it (grpc-js's own status). */
export type RpcErrorCode = `LW_ERR_RPC_${(typeof RPC_STATUS_NAMES)[number]}`;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode] | RpcErrorCode;

const KNOWN = new Set<string>([...Object.values(ErrorCode), ...RPC_STATUS_NAMES.map((name) => `LW_ERR_RPC_${name}`)]);

/** True for a code this version knows; a label read off the wire is checked with it. */
export function isErrorCode(value: string): value is ErrorCode {
  return KNOWN.has(value);
}
