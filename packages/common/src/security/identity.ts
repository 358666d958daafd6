/**
 * Who a process is in the cluster. Every certificate of the cluster CA
 * carries one role in its subject's common name, `lacewing:<role>` or
 * `lacewing:<role>:<name>` — the common name because it is the one field
 * every issuer can set (Helm's genSignedCert, cert-manager, openssl).
 *
 * - `manager`: admin calls on schedulers (trigger, list, delete).
 * - `scheduler`: triggers downloads on daemons.
 * - `seed`: may announce itself as a seed peer.
 * - `peer`: a node's dfdaemon.
 */
export const ROLES = ["manager", "scheduler", "seed", "peer"] as const;
export type Role = (typeof ROLES)[number];

/** The roles that hold and serve pieces. */
export const MEMBER_ROLES: readonly Role[] = ["seed", "peer"];

export interface Identity {
  role: Role;
  /** Empty when the certificate names only a role (one certificate shared by a role's pods). */
  name: string;
  /** The common name as presented, for logs and for binding a host id to its owner. */
  subject: string;
}

const PREFIX = "lacewing";
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,46}$/;

/** The common name for a role (and a holder's name). */
export function identitySubject(role: Role, name = ""): string {
  if (!ROLES.includes(role)) throw new RangeError(`unknown role ${JSON.stringify(role)}`);
  if (name !== "" && !NAME.test(name)) throw new RangeError(`invalid certificate name ${JSON.stringify(name)}: letters, digits, '.', '_' and '-', at most 47`);
  return name === "" ? `${PREFIX}:${role}` : `${PREFIX}:${role}:${name}`;
}

/** The identity a common name states, or undefined when it is not one of ours. */
export function identityOfSubject(commonName: string | undefined): Identity | undefined {
  if (commonName === undefined) return undefined;
  const [prefix, role, name = "", ...extra] = commonName.split(":");
  if (prefix !== PREFIX || extra.length > 0 || !(ROLES as readonly string[]).includes(role ?? "")) return undefined;
  if (name !== "" && !NAME.test(name)) return undefined;
  return { role: role as Role, name, subject: commonName };
}

/**
 * The identity of a TLS peer certificate (node:tls's parsed form). A
 * subject with several common names states no single identity.
 */
export function identityOfPeerCertificate(certificate: { subject?: unknown } | undefined): Identity | undefined {
  const commonName = (certificate?.subject as Record<string, unknown> | undefined)?.["CN"];
  return typeof commonName === "string" ? identityOfSubject(commonName) : undefined;
}
