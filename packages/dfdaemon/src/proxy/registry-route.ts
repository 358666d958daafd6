/**
 * Parses a registry mirror request into what the proxy does with it. Only
 * the read side of the distribution API (`GET`/`HEAD` under `/v2/`) is
 * accepted; the repository name, the reference and `ns` are checked against
 * the distribution grammar, so nothing the proxy forwards can walk out of
 * `/v2/` on the upstream.
 */

/** Where requests for one registry go. */
export interface Upstream {
  /** The registry as containerd names it (`docker.io`, `127.0.0.1:5000`). */
  registry: string;
  /** Scheme and host of its API (`https://registry-1.docker.io`). */
  origin: string;
}

export type RegistryRoute =
  | { kind: "blob"; upstream: Upstream; name: string; digest: string; method: "GET" | "HEAD"; path: string; search: string }
  | { kind: "manifest"; upstream: Upstream; name: string; reference: string; method: "GET" | "HEAD"; path: string; search: string }
  | { kind: "other"; upstream: Upstream; method: "GET" | "HEAD"; path: string; search: string };

/** A request the proxy answers itself, with an OCI error code. */
export interface RouteRejection {
  kind: "rejected";
  status: number;
  code: "NAME_INVALID" | "DIGEST_INVALID" | "MANIFEST_INVALID" | "UNSUPPORTED" | "DENIED" | "NAME_UNKNOWN";
  message: string;
}

export interface RouteOptions {
  /** Registry used when a request has no `ns` (e.g. a Docker daemon's mirror); empty means `ns` is required. */
  defaultRegistry: string;
  /** Registries the proxy serves; empty serves none (an open proxy is never the default). */
  allowedRegistries: readonly string[];
  /** Registries reached over plain HTTP instead of HTTPS. */
  plainHttpRegistries: readonly string[];
}

// The distribution spec's grammar for repository names and tags.
const NAME_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const NAME = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
// Any OCI digest (algorithm:encoded), and the two this proxy verifies.
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const KNOWN_DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
// host[:port] with DNS labels, an IPv4 address, or a bracketed IPv6 address.
const REGISTRY_HOST =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;
const MAX_NAME_LENGTH = 255;

/** True for a syntactically valid registry host (`ghcr.io`, `10.0.0.1:5000`, `[::1]:5000`). */
export function isRegistryHost(text: string): boolean {
  if (!REGISTRY_HOST.test(text)) return false;
  const port = /:(\d+)$/.exec(text.replace(/^\[.*\]/, ""))?.[1];
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
}

/** The API origin of a registry: Docker Hub's API lives on registry-1.docker.io. */
export function upstreamOf(registry: string, plainHttpRegistries: readonly string[]): Upstream {
  const host = registry === "docker.io" ? "registry-1.docker.io" : registry;
  const scheme = plainHttpRegistries.includes(registry) ? "http" : "https";
  return { registry, origin: `${scheme}://${host}` };
}

export function routeRequest(method: string | undefined, rawUrl: string | undefined, options: RouteOptions): RegistryRoute | RouteRejection {
  if (method !== "GET" && method !== "HEAD") return reject(405, "UNSUPPORTED", "the registry mirror only serves GET and HEAD");
  const url = rawUrl ?? "/";
  const queryAt = url.indexOf("?");
  const path = queryAt >= 0 ? url.slice(0, queryAt) : url;
  const query = new URLSearchParams(queryAt >= 0 ? url.slice(queryAt + 1) : "");

  // Nothing encoded or dotted reaches the upstream: %2e%2e, %2f, backslashes
  // and dot segments are refused before any further parsing.
  if (!path.startsWith("/v2/") && path !== "/v2") return reject(404, "UNSUPPORTED", "not a registry API path");
  if (/[%\\]/.test(path) || path.split("/").some((s) => s === "." || s === "..") || path.includes("//"))
    return reject(400, "NAME_INVALID", "the path contains encoded, dot or empty segments");

  const registry = query.get("ns") ?? options.defaultRegistry;
  if (registry === "") return reject(400, "UNSUPPORTED", "the request has no ns parameter and no default registry is configured");
  if (!isRegistryHost(registry)) return reject(400, "UNSUPPORTED", "the ns parameter is not a registry host");
  if (options.allowedRegistries.length === 0)
    return reject(
      403,
      "DENIED",
      "this node's mirror serves no registries: list them with --proxy-registries (the chart sets it from dfdaemon.containerd.registries)",
    );
  if (!options.allowedRegistries.includes(registry)) return reject(403, "DENIED", `registry ${registry} is not mirrored by this node`);
  const upstream = upstreamOf(registry, options.plainHttpRegistries);
  query.delete("ns");
  const search = query.size > 0 ? `?${query.toString()}` : "";

  const m = method;
  const blob = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
  if (blob) {
    const [, name, digest] = blob as unknown as [string, string, string];
    if (!isName(name)) return reject(400, "NAME_INVALID", "invalid repository name");
    if (!isDigest(digest)) return reject(400, "DIGEST_INVALID", "invalid digest");
    // A digest of another algorithm is legal but cannot be verified here: the upstream serves it.
    if (!KNOWN_DIGEST.test(digest)) return { kind: "other", upstream, method: m, path, search };
    return { kind: "blob", upstream, name, digest, method: m, path, search };
  }
  const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (manifest) {
    const [, name, reference] = manifest as unknown as [string, string, string];
    if (!isName(name)) return reject(400, "NAME_INVALID", "invalid repository name");
    if (!TAG.test(reference) && !isDigest(reference)) return reject(400, "MANIFEST_INVALID", "invalid tag or digest");
    return { kind: "manifest", upstream, name, reference, method: m, path, search };
  }
  if (/\/blobs\/uploads(\/|$)/.test(path)) return reject(405, "UNSUPPORTED", "the registry mirror does not accept pushes");
  const tags = /^\/v2\/(.+)\/(?:tags\/list|referrers\/[^/]+)$/.exec(path);
  if (tags && !isName(tags[1]!)) return reject(400, "NAME_INVALID", "invalid repository name");
  // /v2/, /v2/_catalog, tags/list, referrers: passed through as they are.
  if (!/^\/v2(?:\/[A-Za-z0-9._:+=-]+)*\/?$/.test(path)) return reject(400, "NAME_INVALID", "invalid characters in the path");
  return { kind: "other", upstream, method: m, path, search };
}

/** Any OCI digest; sha256 and sha512 ones must also have their exact lowercase hex form. */
function isDigest(text: string): boolean {
  if (!ANY_DIGEST.test(text)) return false;
  return !/^sha(?:256|512):/.test(text) || KNOWN_DIGEST.test(text);
}

function isName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

function reject(status: number, code: RouteRejection["code"], message: string): RouteRejection {
  return { kind: "rejected", status, code, message };
}
