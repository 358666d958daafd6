import { request, type Dispatcher } from "undici";
import { ErrorCode, createPieceHasher, isLacewingError, redactUrl } from "@lacewing/common";
import { daemonError } from "../errors.js";
import { checkOriginUrl, checkRedirect, type OriginPolicy, isRefusedAddress } from "./origin-policy.js";

export interface OriginRequest {
  url: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** Connections that obey `policy` (createOriginAgent). */
  dispatcher: Dispatcher;
  policy: OriginPolicy;
  /**
   * A fresh URL for the same bytes (a presigned URL signed again once it
   * ages): asked before each piece, so a long download outlives the expiry.
   */
  resign?: () => Promise<string>;
}

/** What the first request learned of the origin's content. */
export interface OriginProbe {
  /** -1 when the origin did not say. */
  contentLength: number;
  /** True when the origin honours Range requests. */
  ranged: boolean;
  /** Where the bytes were served from after redirects, with the headers that go there (credentials only to the first origin). */
  source: { url: string; headers: Record<string, string> };
  /** For an origin that ignored Range: the whole body, to read sequentially. */
  body?: Dispatcher.ResponseData["body"];
  /** What identifies this version of the object (ETag, Last-Modified), as the origin sent them; empty when it sent neither. */
  validators: OriginValidators;
}

/**
 * The origin's validators of an object's version. Kept with a task so that
 * a download resumed later (after a daemon restart) can tell whether the
 * pieces it holds are still of the object the origin serves.
 */
export interface OriginValidators {
  etag?: string;
  lastModified?: string;
}

const MAX_REDIRECTS = 5;

/**
 * Asks for the first byte. A 206 tells the length and that ranges work; a 200
 * means the origin ignores Range, and its body is kept as the one stream.
 */
export async function probeOrigin(req: OriginRequest): Promise<OriginProbe> {
  const response = await send(req, { range: "bytes=0-0" });
  const source = { url: response.finalUrl, headers: response.finalHeaders };
  const validators = validatorsOf(response.headers);
  if (response.statusCode === 206) {
    const total = parseContentRange(response.headers["content-range"])?.total;
    await response.body.dump();
    if (total === undefined) return { contentLength: -1, ranged: false, source, body: (await send(req, {})).body, validators };
    return { contentLength: total, ranged: true, source, validators };
  }
  if (response.statusCode === 416) {
    await response.body.dump();
    return { contentLength: 0, ranged: true, source, validators };
  }
  const length = Number(response.headers["content-length"]);
  return {
    contentLength: Number.isFinite(length) && response.headers["content-length"] !== undefined ? length : -1,
    ranged: false,
    source,
    body: response.body,
    validators,
  };
}

function validatorsOf(headers: Dispatcher.ResponseData["headers"]): OriginValidators {
  const etag = headers["etag"];
  const lastModified = headers["last-modified"];
  return {
    ...(typeof etag === "string" && etag !== "" ? { etag } : {}),
    ...(typeof lastModified === "string" && lastModified !== "" ? { lastModified } : {}),
  };
}

/**
 * Why pieces fetched under `held` must not be mixed with what the origin
 * serves under `now`, or undefined when they may. The strongest validator
 * the held pieces have decides (the ETag, else Last-Modified); one the
 * origin no longer sends counts as a change, since nothing then says the
 * object is the same.
 */
export function validatorChange(held: OriginValidators, now: OriginValidators): string | undefined {
  if (held.etag !== undefined) return held.etag === now.etag ? undefined : `ETag ${held.etag} is now ${now.etag ?? "absent"}`;
  if (held.lastModified !== undefined)
    return held.lastModified === now.lastModified ? undefined : `Last-Modified ${held.lastModified} is now ${now.lastModified ?? "absent"}`;
  return undefined;
}

/** Fetches exactly `length` bytes at `offset`, or fails saying how the origin misbehaved. */
export async function fetchRange(req: OriginRequest, offset: number, length: number): Promise<ReadBody> {
  const end = offset + length - 1;
  const response = await send(req, { range: `bytes=${offset}-${end}` });
  const range = parseContentRange(response.headers["content-range"]);
  if (response.statusCode !== 206 || !range || range.start !== offset || range.end !== end) {
    await response.body.dump();
    throw daemonError(
      ErrorCode.originProtocol,
      "unavailable",
      `origin answered a request for bytes ${offset}-${end} with status ${response.statusCode} and range ${String(response.headers["content-range"])}`,
    );
  }
  return readExactly(response.body, length, `bytes ${offset}-${end}`);
}

/** A body read in full: the chunks as they arrived (no copy) and their SHA-256, hashed as they came. */
export interface ReadBody {
  chunks: Buffer[];
  sha256: string;
}

/** Reads a body that must be exactly `length` bytes long. */
export async function readExactly(body: AsyncIterable<Buffer>, length: number, what: string): Promise<ReadBody> {
  const chunks: Buffer[] = [];
  const hash = createPieceHasher();
  let filled = 0;
  try {
    for await (const chunk of body) {
      if (filled + chunk.byteLength > length)
        throw daemonError(ErrorCode.originProtocol, "unavailable", `origin sent more than the ${length} bytes it announced for ${what}`);
      chunks.push(chunk);
      hash.update(chunk);
      filled += chunk.byteLength;
    }
  } catch (err) {
    if (isLacewingError(err)) throw err;
    throw daemonError(ErrorCode.originUnreachable, "unavailable", `connection to origin broke after ${filled} of ${length} bytes of ${what}`, err);
  }
  if (filled !== length) throw daemonError(ErrorCode.originProtocol, "unavailable", `origin sent ${filled} of the ${length} bytes it announced for ${what}`);
  return { chunks, sha256: hash.digest("hex") };
}

/** A response, and the URL and headers of the request that got it after redirects. */
type Sent = Dispatcher.ResponseData & { finalUrl: string; finalHeaders: Record<string, string> };

async function send(req: OriginRequest, extra: { range?: string }): Promise<Sent> {
  let url = req.url;
  let headers = req.headers;
  checkOriginUrl(new URL(url), req.policy);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        method: "GET",
        headers: { ...headers, ...(extra.range ? { range: extra.range } : {}) },
        dispatcher: req.dispatcher,
        signal: req.signal,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
    } catch (err) {
      if (req.signal?.aborted) throw err;
      if (isRefusedAddress(err))
        throw daemonError(ErrorCode.originRefused, "permission_denied", `refusing to fetch from ${new URL(url).host}: ${(err as Error).message}`, err);
      throw daemonError(ErrorCode.originUnreachable, "unavailable", `cannot reach origin ${new URL(url).host}: ${(err as Error).message}`, err);
    }
    const location = response.headers["location"];
    if (response.statusCode >= 300 && response.statusCode < 400 && typeof location === "string") {
      await response.body.dump();
      const next = new URL(location, url);
      checkRedirect(new URL(url), next, req.policy);
      // Credentials stay with the origin that asked for them: a registry redirects blobs to object storage, which rejects them.
      if (next.origin !== new URL(url).origin) headers = withoutCredentials(headers);
      url = next.toString();
      continue;
    }
    if (response.statusCode >= 400 && response.statusCode !== 416) {
      await response.body.dump();
      const retryable = response.statusCode >= 500 || response.statusCode === 429 || response.statusCode === 408;
      throw daemonError(
        ErrorCode.originStatus,
        retryable ? "unavailable" : statusKind(response.statusCode),
        `origin returned HTTP ${response.statusCode} for ${redactUrl(url, { query: "all" })}`,
        undefined,
        {
          status: response.statusCode,
          retryable,
        },
      );
    }
    return Object.assign(response, { finalUrl: url, finalHeaders: headers });
  }
  throw daemonError(ErrorCode.originProtocol, "failed_precondition", `origin redirected more than ${MAX_REDIRECTS} times`);
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !["authorization", "cookie", "proxy-authorization"].includes(name.toLowerCase())));
}

function statusKind(status: number): "not_found" | "permission_denied" | "unauthenticated" | "failed_precondition" {
  if (status === 404 || status === 410) return "not_found";
  if (status === 401) return "unauthenticated";
  if (status === 403) return "permission_denied";
  return "failed_precondition";
}

/** Whether another try at the origin could succeed. */
export function isRetryableOriginError(err: unknown): boolean {
  if (!isLacewingError(err)) return false;
  if (err.code === ErrorCode.originStatus) return err.details["retryable"] === true;
  return err.code === ErrorCode.originUnreachable || err.code === ErrorCode.originProtocol;
}

function parseContentRange(value: string | string[] | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const match = typeof value === "string" ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === "*" ? undefined : Number(match[3]) };
}
