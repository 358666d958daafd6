import { isS3Url, parseS3Url, s3UrlOf } from "./s3-url.js";
import { DEFAULT_FILTERED_QUERY_PARAMS } from "./task-id.js";

/** What a hidden value is shown as, in URLs, API views and logs alike. */
export const REDACTED = "[redacted]";

/**
 * Query parameters that carry credentials without being signed-URL
 * parameters. They are hidden in what is shown but stay part of the task id:
 * adding a name here must never change which task a URL is.
 */
const CREDENTIAL_QUERY_PARAMS: readonly string[] = ["token", "access_token", "id_token", "auth", "api_key", "apikey", "key", "password", "secret"];

export interface RedactUrlOptions {
  /** More query parameters whose values are secret (a job's or a download's `filteredQueryParams`). */
  filteredQueryParams?: readonly string[];
  /**
   * "values" (the default): parameter names stay, secret values read `[redacted]`.
   * "all": the whole query reads `?…`, for messages that need no parameter at all.
   */
  query?: "values" | "all";
}

/**
 * A URL safe to show or log: userinfo (`user:pass@`) reads `[redacted]@`,
 * signed-URL and credential query values read `[redacted]`, the fragment is
 * dropped. Redacting a redacted URL gives it back unchanged. A string that
 * is not an http(s) URL could hold anything, so it reads `[redacted]`. An
 * s3:// URL names an object and holds no secret (credentials travel beside
 * it): it is shown as parseS3Url reads it.
 */
export function redactUrl(url: string, options: RedactUrlOptions = {}): string {
  if (isS3Url(url)) {
    try {
      return s3UrlOf(parseS3Url(url, { prefix: true }));
    } catch {
      return REDACTED;
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return REDACTED;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return REDACTED;
  // Built by hand: URL setters would percent-encode the brackets of "[redacted]".
  const userinfo = parsed.username !== "" || parsed.password !== "" ? `${REDACTED}@` : "";
  const base = `${parsed.protocol}//${userinfo}${parsed.host}${parsed.pathname}`;
  if (parsed.search === "") return base;
  if (options.query === "all") return `${base}?…`;
  const hidden = new Set([...DEFAULT_FILTERED_QUERY_PARAMS, ...CREDENTIAL_QUERY_PARAMS, ...(options.filteredQueryParams ?? [])].map((p) => p.toLowerCase()));
  const pairs = parsed.search
    .slice(1)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      if (eq < 0) return pair;
      // The name as URLSearchParams decodes it (never throws, unlike decodeURIComponent).
      const name = [...new URLSearchParams(pair).keys()][0] ?? "";
      return hidden.has(name.toLowerCase()) ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
    });
  return `${base}?${pairs.join("&")}`;
}
