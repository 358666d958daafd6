import type { ErrorCode } from "./error-codes.js";

/**
 * The condition class of an error. Boundaries (gRPC, HTTP, the CLI) turn a
 * kind into their own status in one place each.
 */
export type ErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "unauthenticated"
  | "resource_exhausted"
  | "failed_precondition"
  | "aborted"
  | "cancelled"
  | "deadline_exceeded"
  | "unavailable"
  | "internal";

export interface LacewingErrorOptions {
  cause?: unknown;
  /** Structured facts for logs; never put secrets here. */
  details?: Record<string, unknown>;
}

/**
 * Base error of every Lacewing package. `code` is stable and machine-readable
 * (one of error-codes.ts); `message` is one human sentence that is safe to
 * show a user.
 */
export class LacewingError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, kind: ErrorKind, message: string, options: LacewingErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LacewingError";
    this.code = code;
    this.kind = kind;
    this.details = options.details ?? {};
  }
}

export function isLacewingError(err: unknown): err is LacewingError {
  return err instanceof LacewingError;
}

/** The message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** True for the error an aborted AbortSignal raises. */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR");
}
