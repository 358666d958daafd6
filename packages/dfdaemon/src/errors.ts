import { LacewingError, type ErrorKind } from "@lacewing/common";

/** Stable codes of the errors the daemon reports to dfget and peers. */
export const DaemonErrorCode = {
  originStatus: "LW_ERR_ORIGIN_STATUS",
  originProtocol: "LW_ERR_ORIGIN_PROTOCOL",
  originUnreachable: "LW_ERR_ORIGIN_UNREACHABLE",
  /** The origin (or a redirect) names an address the daemon must not fetch from: see source/origin-policy.ts. */
  originRefused: "LW_ERR_ORIGIN_REFUSED",
  digestMismatch: "LW_ERR_DIGEST_MISMATCH",
  output: "LW_ERR_OUTPUT",
  timeout: "LW_ERR_TIMEOUT",
  diskFull: "LW_ERR_DISK_FULL",
  storage: "LW_ERR_STORAGE",
  noSource: "LW_ERR_NO_SOURCE",
  taskNotFound: "LW_ERR_TASK_NOT_FOUND",
  pieceNotFound: "LW_ERR_PIECE_NOT_FOUND",
  cancelled: "LW_ERR_CANCELLED",
  /** The task is being downloaded or read and cannot be evicted now. */
  taskBusy: "LW_ERR_TASK_BUSY",
} as const;

export function daemonError(code: string, kind: ErrorKind, message: string, cause?: unknown, details?: Record<string, unknown>): LacewingError {
  return new LacewingError(code, kind, message, { cause, ...(details ? { details } : {}) });
}
