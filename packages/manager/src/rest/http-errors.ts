import { LacewingError, type ErrorKind } from "@lacewing/common";

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

export interface HttpErrorBody {
  error: { code: string; message: string; field?: string };
}

/** The one place where a thrown value becomes an HTTP status and body; internals stay off the wire. */
export function toHttpError(err: unknown): { status: number; body: HttpErrorBody } {
  if (err instanceof LacewingError) {
    const field = err.details["field"];
    return {
      status: STATUS_OF[err.kind],
      body: { error: { code: err.code, message: err.message, ...(typeof field === "string" ? { field } : {}) } },
    };
  }
  return { status: 500, body: { error: { code: "LW_ERR_INTERNAL", message: "internal error" } } };
}
