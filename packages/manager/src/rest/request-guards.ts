/**
 * Checks that keep browsers out of the REST API. It is for scripts: a web
 * page must not drive it, neither cross-site (a form or fetch posting a job
 * to http://127.0.0.1:8080) nor through DNS rebinding (a name the attacker
 * controls, re-pointed at 127.0.0.1, so that the page is "same-origin" with
 * the manager). Pure functions; rest-server.ts applies them.
 */

/** A host name or [IPv6] literal (lower case) and the port, if one was written. */
export interface Authority {
  name: string;
  port: number | undefined;
}

const AUTHORITY = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?)(?::(\d{1,5}))?$/i;

/** Parses `name`, `name:port` or `[v6]:port` (a Host header, an allowedHosts entry); undefined when it is neither. */
export function parseAuthority(text: string): Authority | undefined {
  const match = AUTHORITY.exec(text.trim());
  if (match === null) return undefined;
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && port > 65535) return undefined;
  return { name: (match[1] ?? "").toLowerCase(), port };
}

/**
 * The Host values the API answers to without a token: the listen address as
 * bound, and `localhost`, `127.0.0.1` and `[::1]`, all at the bound port;
 * plus each allowedHosts entry, at its own port or, written without one, at
 * any port (a local reverse proxy forwards its own public name and port).
 */
export function hostAllowList(listenHost: string, boundPort: number, allowedHosts: readonly string[]): Authority[] {
  const listenName = listenHost.includes(":") && !listenHost.startsWith("[") ? `[${listenHost}]` : listenHost;
  const loopback = [listenName, "localhost", "127.0.0.1", "[::1]"].map((name) => ({ name: name.toLowerCase(), port: boundPort }));
  const extra = allowedHosts.map(parseAuthority).filter((a): a is Authority => a !== undefined);
  return [...loopback, ...extra];
}

/** Whether a request's Host header names this manager. A missing or malformed one does not. */
export function isAllowedHost(host: string | undefined, allowList: readonly Authority[]): boolean {
  const parsed = parseAuthority(host ?? "");
  if (parsed === undefined) return false;
  const port = parsed.port ?? 80;
  return allowList.some((allowed) => allowed.name === parsed.name && (allowed.port === undefined || allowed.port === port));
}

/**
 * Whether an Origin header names the same host as the Host header. The
 * scheme is not compared: behind a TLS-terminating proxy the browser's
 * origin is https while the manager speaks http. A Host without a port is
 * the default port of whatever scheme the client used, so any default
 * matches it. "null" (sandboxed frames, file: pages) is never the same.
 */
export function isSameOrigin(origin: string, host: string | undefined): boolean {
  const target = parseAuthority(host ?? "");
  if (target === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  if (url.hostname.toLowerCase() !== target.name) return false;
  if (target.port === undefined) return url.port === "";
  return (url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port)) === target.port;
}
