import { ErrorCode } from "@lacewing/common";
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { BlockList, isIP } from "node:net";
import { Agent } from "undici";
import { daemonError } from "../errors.js";

/**
 * Which origins the daemon may fetch from. A daemon fetches URLs that
 * other processes name (a scheduler's trigger, a registry's redirect, a
 * local client) and then serves what it fetched to the cluster, so an
 * address on the node itself must not be reachable through it:
 *
 * - link-local addresses (169.254.0.0/16, fe80::/10) and the cloud metadata
 *   endpoints are always refused: they hand out the node's credentials;
 * - the unspecified and multicast addresses are refused: they are not servers;
 * - loopback is refused unless allowed: 127.0.0.1 is a different server on
 *   every node, so sharing what it served is wrong even when it is harmless
 *   (one-machine tests and demos allow it).
 *
 * Names are checked at connect time, on every address they resolve to, so
 * DNS rebinding gains nothing; redirects are checked hop by hop, and never
 * lead from https to http.
 */
export interface OriginPolicy {
  allowLoopback: boolean;
}

const ALWAYS_REFUSED = new BlockList();
ALWAYS_REFUSED.addSubnet("169.254.0.0", 16, "ipv4");
ALWAYS_REFUSED.addSubnet("0.0.0.0", 8, "ipv4");
ALWAYS_REFUSED.addSubnet("224.0.0.0", 4, "ipv4");
// Alibaba Cloud's metadata endpoint lives outside link-local.
ALWAYS_REFUSED.addAddress("100.100.100.200", "ipv4");
ALWAYS_REFUSED.addSubnet("fe80::", 10, "ipv6");
ALWAYS_REFUSED.addSubnet("ff00::", 8, "ipv6");
ALWAYS_REFUSED.addAddress("::", "ipv6");
// AWS's IPv6 metadata endpoint.
ALWAYS_REFUSED.addAddress("fd00:ec2::254", "ipv6");

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** Why the daemon must not connect to `address`, or undefined when it may. */
export function addressProblem(address: string, policy: OriginPolicy): string | undefined {
  const family = isIP(address);
  if (family === 0) return undefined;
  // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is its IPv4 address.
  const mapped = family === 6 ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] : undefined;
  const [ip, type] = mapped !== undefined ? [mapped, "ipv4" as const] : [address, family === 4 ? ("ipv4" as const) : ("ipv6" as const)];
  if (ALWAYS_REFUSED.check(ip, type)) return `${address} is a link-local, metadata, unspecified or multicast address`;
  if (!policy.allowLoopback && LOOPBACK.check(ip, type)) return `${address} is a loopback address (allow loopback origins with --allow-loopback-origins)`;
  return undefined;
}

function refused(url: URL, problem: string): Error {
  return daemonError(ErrorCode.originRefused, "permission_denied", `refusing to fetch ${url.protocol}//${url.host}: ${problem}`);
}

/** Throws when `url` names an address the policy refuses (names are checked when they are resolved). */
export function checkOriginUrl(url: URL, policy: OriginPolicy): void {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost")) {
    if (!policy.allowLoopback) throw refused(url, "localhost is a loopback name (allow loopback origins with --allow-loopback-origins)");
    return;
  }
  const problem = addressProblem(host, policy);
  if (problem !== undefined) throw refused(url, problem);
}

/** Throws when a redirect from `from` to `to` must not be followed. */
export function checkRedirect(from: URL, to: URL, policy: OriginPolicy): void {
  if (to.protocol !== "http:" && to.protocol !== "https:") throw refused(to, "a redirect may only lead to http or https");
  if (from.protocol === "https:" && to.protocol === "http:") throw refused(to, "a redirect from https to plain http is never followed");
  checkOriginUrl(to, policy);
}

/** The errno-like code policyLookup fails a connection with, for the callers to tell a refused address from an unreachable one. */
const REFUSED_ADDRESS = "LW_ORIGIN_REFUSED";

/** True for the error of a connection that policyLookup refused (an address the policy forbids). */
export function isRefusedAddress(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === REFUSED_ADDRESS;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup that fails for any resolved address the policy refuses. */
export function policyLookup(policy: OriginPolicy) {
  return (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, []);
      for (const { address } of addresses) {
        const problem = addressProblem(address, policy);
        if (problem !== undefined) {
          const error = Object.assign(new Error(`${hostname} resolves to ${problem}`), { code: REFUSED_ADDRESS }) as NodeJS.ErrnoException;
          return callback(error, []);
        }
      }
      if ((options as LookupAllOptions).all === true) callback(null, addresses);
      else callback(null, addresses[0]?.address ?? "", addresses[0]?.family);
    });
  };
}

/** An undici agent whose connections obey the policy (for every origin and registry fetch). */
export function createOriginAgent(policy: OriginPolicy, options: { connections?: number } = {}): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    connect: { lookup: policyLookup(policy) },
  });
}
