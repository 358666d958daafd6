import { ErrorCode } from "@lacewing/common";
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { request, type Dispatcher } from "undici";
import { daemonError } from "../errors.js";
import { checkOriginUrl, checkRedirect, type OriginPolicy, isRefusedAddress } from "../source/origin-policy.js";

/**
 * Talking to the upstream registry: plain forwarding (manifests, tags, HEAD,
 * anything not served through P2P), the access check before a blob goes
 * through P2P, and ranged blob fetches when the P2P path gives out.
 */

// Hop-by-hop headers (RFC 9110 §7.6.1) and Host never cross the proxy.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

const MAX_REDIRECTS = 5;
const HEADERS_TIMEOUT_MS = 30_000;
const BODY_TIMEOUT_MS = 60_000;

export interface UpstreamCall {
  /** Connections that obey `policy` (createOriginAgent). */
  dispatcher: Dispatcher;
  policy: OriginPolicy;
  signal: AbortSignal;
}

/** A client request's headers worth sending upstream: all but hop-by-hop ones and Host. */
export function forwardableHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const named = new Set(
    String(headers["connection"] ?? "")
      .toLowerCase()
      .split(/\s*,\s*/),
  );
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/**
 * Sends a request upstream and streams the answer back as it is: status,
 * headers (a 401's `WWW-Authenticate` included) and body. Redirects are
 * passed on for the client to follow, with a relative `Location` made
 * absolute so it does not point back at the proxy. Resolves with the status;
 * rejects (before anything was written) when the upstream cannot be reached.
 */
export async function forwardRequest(
  method: "GET" | "HEAD",
  url: string,
  headers: Record<string, string>,
  response: ServerResponse,
  call: UpstreamCall,
): Promise<number> {
  const upstream = await send(method, url, headers, call);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = name === "location" && typeof value === "string" ? new URL(value, url).toString() : value;
  }
  response.writeHead(upstream.statusCode, out);
  await pipeline(upstream.body, response);
  return upstream.statusCode;
}

/**
 * Asks the upstream, with the client's credentials, whether the client may
 * read a blob (`HEAD`, redirects not followed: a registry only redirects a
 * client it has authorised). True for 2xx and 3xx; any other status means
 * the client must see the upstream's own answer.
 */
export async function mayRead(url: string, authorization: string | undefined, call: UpstreamCall): Promise<boolean> {
  const upstream = await send("HEAD", url, authorization === undefined ? {} : { authorization }, call);
  await upstream.body.dump();
  return upstream.statusCode >= 200 && upstream.statusCode < 400;
}

/**
 * Fetches bytes `start`..`end` (inclusive) of a blob, following redirects
 * (Authorization is dropped when a redirect leaves the registry's origin,
 * as blob storage behind a registry rejects foreign credentials). Yields
 * exactly those bytes or throws.
 */
export async function* fetchBlobRange(url: string, authorization: string | undefined, start: number, end: number, call: UpstreamCall): AsyncGenerator<Buffer> {
  let current = url;
  let headers: Record<string, string> = { range: `bytes=${start}-${end}`, ...(authorization === undefined ? {} : { authorization }) };
  let upstream = await send("GET", current, headers, call);
  for (let hop = 0; upstream.statusCode >= 300 && upstream.statusCode < 400 && typeof upstream.headers["location"] === "string"; hop++) {
    await upstream.body.dump();
    if (hop === MAX_REDIRECTS) throw daemonError(ErrorCode.originProtocol, "unavailable", `registry redirected more than ${MAX_REDIRECTS} times`);
    const next = new URL(upstream.headers["location"], current);
    checkRedirect(new URL(current), next, call.policy);
    if (next.origin !== new URL(current).origin) headers = { range: headers["range"]! };
    current = next.toString();
    upstream = await send("GET", current, headers, call);
  }
  // A 206 must start where asked; a 200 (Range ignored) is skipped up to `start`.
  let skip: number;
  if (upstream.statusCode === 206) {
    const match = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(String(upstream.headers["content-range"]));
    if (match?.[1] === undefined || Number(match[1]) !== start) {
      await upstream.body.dump();
      throw daemonError(ErrorCode.originProtocol, "unavailable", `registry answered a range from ${start} with ${String(upstream.headers["content-range"])}`);
    }
    skip = 0;
  } else if (upstream.statusCode === 200) {
    skip = start;
  } else {
    await upstream.body.dump();
    throw daemonError(ErrorCode.originStatus, "unavailable", `registry returned HTTP ${upstream.statusCode} for a blob range`, undefined, {
      status: upstream.statusCode,
    });
  }
  let left = end - start + 1;
  for await (const raw of upstream.body) {
    let chunk = raw as Buffer;
    if (skip > 0) {
      const dropped = Math.min(skip, chunk.byteLength);
      skip -= dropped;
      chunk = chunk.subarray(dropped);
    }
    if (chunk.byteLength === 0) continue;
    if (chunk.byteLength >= left) {
      yield chunk.subarray(0, left);
      left = 0;
      break;
    }
    left -= chunk.byteLength;
    yield chunk;
  }
  if (left > 0) throw daemonError(ErrorCode.originProtocol, "unavailable", `registry ended a blob range ${left} bytes short`);
}

async function send(method: "GET" | "HEAD", url: string, headers: Record<string, string>, call: UpstreamCall): Promise<Dispatcher.ResponseData> {
  checkOriginUrl(new URL(url), call.policy);
  try {
    return await request(url, {
      method,
      headers,
      dispatcher: call.dispatcher,
      signal: call.signal,
      headersTimeout: HEADERS_TIMEOUT_MS,
      bodyTimeout: BODY_TIMEOUT_MS,
    });
  } catch (err) {
    if (call.signal.aborted) throw err;
    if (isRefusedAddress(err))
      throw daemonError(ErrorCode.originRefused, "permission_denied", `refusing to reach registry ${new URL(url).host}: ${(err as Error).message}`, err);
    throw daemonError(ErrorCode.originUnreachable, "unavailable", `cannot reach registry ${new URL(url).host}: ${(err as Error).message}`, err);
  }
}
