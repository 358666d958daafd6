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

/**
 * Refusals only HTTP has a word for. Their kind says what they are to every
 * other boundary (a wrong media type is an invalid argument, a request sent
 * under a name the manager does not answer to is refused permission); HTTP
 * gives them the more precise status here, so no new kind is needed.
 */
export const HttpRefusal = {
  unsupportedMediaType: "LW_ERR_MANAGER_UNSUPPORTED_MEDIA_TYPE",
  misdirectedRequest: "LW_ERR_MANAGER_MISDIRECTED_REQUEST",
  crossOrigin: "LW_ERR_MANAGER_CROSS_ORIGIN",
} as const;

const STATUS_OF_CODE: Record<(typeof HttpRefusal)[keyof typeof HttpRefusal], number> = {
  LW_ERR_MANAGER_UNSUPPORTED_MEDIA_TYPE: 415,
  LW_ERR_MANAGER_MISDIRECTED_REQUEST: 421,
  LW_ERR_MANAGER_CROSS_ORIGIN: 403,
};

export interface HttpErrorBody {
  error: { code: string; message: string; field?: string };
}

/** The one place where a thrown value becomes an HTTP status and body; internals stay off the wire. */
export function toHttpError(err: unknown): { status: number; body: HttpErrorBody } {
  if (err instanceof LacewingError) {
    const field = err.details["field"];
    return {
      status: (STATUS_OF_CODE as Record<string, number | undefined>)[err.code] ?? STATUS_OF[err.kind],
      body: { error: { code: err.code, message: err.message, ...(typeof field === "string" ? { field } : {}) } },
    };
  }
  return { status: 500, body: { error: { code: "LW_ERR_INTERNAL", message: "internal error" } } };
}
