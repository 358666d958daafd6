import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createCertificateAuthority, issueCertificate, type KeyPair } from "./certificates.js";
import type { Role } from "./identity.js";
import type { Security } from "./security.js";
import { TLS_FILES, tlsMaterialOf } from "./tls-material.js";

/** Writes a TLS directory (ca.crt, tls.crt, tls.key) as processes read it; the key is readable by its owner only. */
export async function writeTlsDir(dir: string, caCertPem: string, issued: KeyPair): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, TLS_FILES.ca), caCertPem);
  await writeFile(join(dir, TLS_FILES.cert), issued.certPem);
  await writeFile(join(dir, TLS_FILES.key), issued.keyPem, { mode: 0o600 });
  await chmod(join(dir, TLS_FILES.key), 0o600);
  return dir;
}

/**
 * A cluster CA kept in memory that issues certificates on the spot: what
 * tests, the demo and one-machine setups use instead of a provisioned CA.
 */
export class LocalPki {
  readonly ca: KeyPair;

  constructor(ca: KeyPair = createCertificateAuthority({ name: "lacewing local CA" })) {
    this.ca = ca;
  }

  /** A fresh certificate for `role` (and holder `name`) as a process's Security. */
  security(role: Role, name = ""): Security {
    const issued = issueCertificate(this.ca, { role, name });
    return { mode: "tls", material: tlsMaterialOf({ ca: this.ca.certPem, cert: issued.certPem, key: issued.keyPem }, role) };
  }

  /** Writes a TLS directory for `role` under `dir` and returns it (for a process's --tls-dir). */
  writeTlsDir(dir: string, role: Role, name = ""): Promise<string> {
    return writeTlsDir(dir, this.ca.certPem, issueCertificate(this.ca, { role, name }));
  }
}
