import { ErrorCode } from "../error-codes.js";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LacewingError } from "../errors.js";
import { identityOfSubject, type Identity, type Role } from "./identity.js";

/**
 * A process's TLS material: the cluster CA it trusts, and its own
 * certificate and key. Read from one directory laid out like a Kubernetes
 * TLS Secret with its CA (cert-manager writes exactly these keys).
 */
export interface TlsMaterial {
  readonly dir: string;
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly identity: Identity;
  /** When the certificate stops being valid. */
  readonly notAfter: Date;
}

export const TLS_FILES = { ca: "ca.crt", cert: "tls.crt", key: "tls.key" } as const;

function tlsError(message: string, cause?: unknown): LacewingError {
  return new LacewingError(ErrorCode.tls, "invalid_argument", message, cause === undefined ? {} : { cause });
}

function readPem(dir: string, file: string): Buffer {
  try {
    return readFileSync(join(dir, file));
  } catch (err) {
    throw tlsError(`cannot read ${join(dir, file)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
}

/**
 * Loads and checks `dir/{ca.crt,tls.crt,tls.key}` (see tlsMaterialOf).
 */
export function loadTlsMaterial(dir: string, role: Role, now = new Date()): TlsMaterial {
  const pems = { ca: readPem(dir, TLS_FILES.ca), cert: readPem(dir, TLS_FILES.cert), key: readPem(dir, TLS_FILES.key) };
  return tlsMaterialOf(pems, role, { dir, now });
}

/**
 * Checks PEM material: the certificate must be signed by the CA, valid now,
 * match the key, and name the role `role`. Every problem is an LW_ERR_TLS
 * that says which file and what is wrong.
 */
export function tlsMaterialOf(
  pems: { ca: string | Buffer; cert: string | Buffer; key: string | Buffer },
  role: Role,
  options: { dir?: string; now?: Date } = {},
): TlsMaterial {
  const dir = options.dir ?? "";
  const name = (file: string): string => (dir === "" ? file : join(dir, file));
  const [ca, cert, key] = [pems.ca, pems.cert, pems.key].map((pem) => Buffer.from(pem)) as [Buffer, Buffer, Buffer];
  let caCert: X509Certificate;
  let own: X509Certificate;
  try {
    caCert = new X509Certificate(ca);
  } catch (err) {
    throw tlsError(`${name(TLS_FILES.ca)} is not a PEM certificate`, err);
  }
  try {
    own = new X509Certificate(cert);
  } catch (err) {
    throw tlsError(`${name(TLS_FILES.cert)} is not a PEM certificate`, err);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw tlsError(`${name(TLS_FILES.key)} is not a PEM private key`, err);
  }
  if (!own.checkPrivateKey(privateKey)) throw tlsError(`${name(TLS_FILES.key)} does not belong to ${name(TLS_FILES.cert)}`);
  if (!caCert.ca) throw tlsError(`${name(TLS_FILES.ca)} is not a certificate authority`);
  if (!own.checkIssued(caCert) || !own.verify(caCert.publicKey)) throw tlsError(`${name(TLS_FILES.cert)} is not signed by the CA in ${name(TLS_FILES.ca)}`);
  const now = options.now ?? new Date();
  const notAfter = new Date(own.validTo);
  if (now < new Date(own.validFrom) || now > notAfter)
    throw tlsError(`${name(TLS_FILES.cert)} is not valid now (valid from ${own.validFrom} to ${own.validTo})`);
  const identity = identityOfSubject(commonNameOf(own.subject));
  if (identity === undefined)
    throw tlsError(`${name(TLS_FILES.cert)} names no Lacewing role: its subject is ${JSON.stringify(own.subject)}, expected CN=lacewing:<role>[:<name>]`);
  if (identity.role !== role) throw tlsError(`${name(TLS_FILES.cert)} is a ${identity.role} certificate; this process needs a ${role} certificate`);
  return { dir, ca, cert, key, identity, notAfter };
}

/** The CN of a subject as node:crypto prints it ("CN=…" lines). */
export function commonNameOf(subject: string): string | undefined {
  for (const line of subject.split("\n")) if (line.startsWith("CN=")) return line.slice(3);
  return undefined;
}
