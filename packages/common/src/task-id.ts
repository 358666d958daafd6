import { ErrorCode } from "./error-codes.js";
import { createHash } from "node:crypto";
import { LacewingError } from "./errors.js";
import { isS3Url, parseS3Url, s3UrlOf } from "./s3-url.js";

/**
 * Query parameters dropped before hashing a URL into a task id by default:
 * signed-URL parameters of the common object stores (they change on every
 * signing), and containerd's `ns` (the upstream registry name).
 */
export const DEFAULT_FILTERED_QUERY_PARAMS: readonly string[] = [
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Date",
  "X-Amz-Expires",
  "X-Amz-SignedHeaders",
  "X-Amz-Signature",
  "X-Amz-Security-Token",
  "Expires",
  "Signature",
  "OSSAccessKeyId",
  "AWSAccessKeyId",
  "X-Goog-Algorithm",
  "X-Goog-Credential",
  "X-Goog-Date",
  "X-Goog-Expires",
  "X-Goog-SignedHeaders",
  "X-Goog-Signature",
  "sig",
  "se",
  "sp",
  "sv",
  "sr",
  "st",
  "ns",
];

export interface TaskIdInput {
  url: string;
  tag?: string;
  application?: string;
  /** Extra query parameters to drop, on top of the defaults. */
  filteredQueryParams?: readonly string[];
  /**
   * The pinned version of an s3:// object (its ETag): the same key
   * overwritten is another task. Ignored for http(s) URLs.
   */
  sourceVersion?: string;
}

const OCI_BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** The content digest of an OCI blob URL (`/v2/<name>/blobs/<digest>`), or undefined. */
export function ociBlobDigestOf(url: string | URL): string | undefined {
  if (typeof url === "string" && isS3Url(url)) return undefined;
  const parsed = typeof url === "string" ? parseUrl(url) : url;
  return OCI_BLOB_PATH.exec(parsed.pathname)?.[2];
}

/**
 * Checks a URL a download may name: http(s) (parsed) or s3://bucket/key
 * (checked by parseS3Url); throws LW_ERR_BAD_URL.
 */
export function checkSourceUrl(url: string): void {
  if (isS3Url(url)) parseS3Url(url);
  else parseUrl(url);
}

/** Parses an http(s) URL or throws LW_ERR_BAD_URL. */
export function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new LacewingError(ErrorCode.badUrl, "invalid_argument", `not a valid URL: ${JSON.stringify(url)}`, { cause: err });
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new LacewingError(
      ErrorCode.badUrl,
      "invalid_argument",
      `unsupported URL scheme ${parsed.protocol.replace(/:$/, "")}: only http and https are supported`,
    );
  }
  return parsed;
}

/** The URL as the task id sees it: filtered query params removed, remaining sorted. */
export function canonicalUrl(url: string, filteredQueryParams: readonly string[] = []): string {
  const parsed = parseUrl(url);
  const drop = new Set([...DEFAULT_FILTERED_QUERY_PARAMS, ...filteredQueryParams].map((p) => p.toLowerCase()));
  const kept = [...parsed.searchParams.entries()].filter(([key]) => !drop.has(key.toLowerCase()));
  kept.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  parsed.search = new URLSearchParams(kept).toString();
  parsed.hash = "";
  return parsed.toString();
}

/**
 * Task id: sha256 over the canonical URL (or, for an OCI blob, its content
 * digest, so the same layer from two registries is one task), the tag and
 * the application. An s3:// object's subject is its URL and its pinned
 * version, so whoever pins the same ETag (a daemon, the manager's preheat)
 * names the same task.
 */
export function taskIdOf(input: TaskIdInput): string {
  const subject = isS3Url(input.url)
    ? `${s3UrlOf(parseS3Url(input.url))}\0${input.sourceVersion ?? ""}`
    : (ociBlobDigestOf(input.url) ?? canonicalUrl(input.url, input.filteredQueryParams));
  return createHash("sha256")
    .update(subject)
    .update("\0")
    .update(input.tag ?? "")
    .update("\0")
    .update(input.application ?? "")
    .digest("hex");
}

/** A fresh peer id: host id, task id prefix and randomness, readable in logs. */
export function newPeerId(hostId: string, taskId: string): string {
  return `${hostId}-${taskId.slice(0, 12)}-${createHash("sha256").update(`${Date.now()}${Math.random()}`).digest("hex").slice(0, 12)}`;
}
