import { LacewingError, type ErrorCode, type ErrorKind } from "@lacewing/common";

/** A daemon error with its cause and details, in one call. */
export function daemonError(code: ErrorCode, kind: ErrorKind, message: string, cause?: unknown, details?: Record<string, unknown>): LacewingError {
  return new LacewingError(code, kind, message, { cause, ...(details ? { details } : {}) });
}
