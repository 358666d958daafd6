import type { ErrorBodyView } from "@lacewing/manager";

/** An answer of the manager that is not 2xx, with the API's error code and the field at fault. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;

  constructor(status: number, body: Partial<ErrorBodyView> | undefined) {
    super(body?.error?.message ?? `the manager answered ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? "";
    this.field = body?.error?.field;
  }
}

const TOKEN_KEY = "lacewing.token";

/**
 * The manager's REST API with the token the operator signed in with. The
 * token lives in this tab's sessionStorage and travels only in the
 * Authorization header: no cookie, so no other site can make the browser
 * send it (the manager refuses foreign origins as well).
 */
export const session = {
  get token(): string {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  },
  set token(value: string) {
    if (value === "") sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, value);
  },
};

export async function call<T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown, token = session.token): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (token !== "") headers["authorization"] = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), cache: "no-store" });
  const text = await response.text();
  const parsed = text === "" ? undefined : (JSON.parse(text) as unknown);
  if (!response.ok) throw new ApiError(response.status, parsed as Partial<ErrorBodyView> | undefined);
  return parsed as T;
}
