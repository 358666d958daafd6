import { ErrorCode, LacewingError, type ErrorKind } from "@lacewing/common";

const STATUS_OF: Record<ErrorKind, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  aborted: 409,
  failed_precondition: 412,
  resource_exhausted: 429,
  cancelled: 499,
  internal: 500,
  unavailable: 503,
  deadline_exceeded: 504,
};

/**
 * Refusals only HTTP has a word for. Their kind says what they are to every
 * other boundary (a wrong media type is an invalid argument, a request sent
 * under a name the manager does not answer to is refused permission); HTTP
 * gives them the more precise status here, so no new kind is needed.
 */
export const HttpRefusal = {
  unsupportedMediaType: ErrorCode.managerUnsupportedMediaType,
  misdirectedRequest: ErrorCode.managerMisdirectedRequest,
  crossOrigin: ErrorCode.managerCrossOrigin,
} as const;

const STATUS_OF_CODE: Partial<Record<ErrorCode, number>> = {
  [HttpRefusal.unsupportedMediaType]: 415,
  [HttpRefusal.misdirectedRequest]: 421,
  [HttpRefusal.crossOrigin]: 403,
};

export interface HttpErrorBody {
  error: { code: ErrorCode; message: string; field?: string };
}

/** The one place where a thrown value becomes an HTTP status and body; internals stay off the wire. */
export function toHttpError(err: unknown): { status: number; body: HttpErrorBody } {
  if (err instanceof LacewingError) {
    const field = err.details["field"];
    return {
      status: STATUS_OF_CODE[err.code] ?? STATUS_OF[err.kind],
      body: { error: { code: err.code, message: err.message, ...(typeof field === "string" ? { field } : {}) } },
    };
  }
  return { status: 500, body: { error: { code: ErrorCode.internal, message: "internal error" } } };
}
