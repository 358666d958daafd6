import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, schedulerv1, type RpcClient } from "@lacewing/api";
import { LocalPki, type Role } from "@lacewing/common";

/**
 * The cluster CA of the processes one test file starts: every scheduler,
 * daemon and manager runs with TLS, as in production, with a certificate
 * issued here on the spot.
 */
export const pki = new LocalPki();

const root = mkdtempSync(join(tmpdir(), "lacewing-test-tls-"));
process.once("exit", () => rmSync(root, { recursive: true, force: true }));
let issued = 0;

/** A fresh TLS directory (ca.crt, tls.crt, tls.key) for a process of `role`, held by `name`. */
export function tlsDir(role: Role, name = ""): Promise<string> {
  return pki.writeTlsDir(join(root, `${role}-${name || "any"}-${issued++}`), role, name);
}

/** `--tls-dir DIR` for a process of `role`. */
export async function tlsArgs(role: Role, name = ""): Promise<string[]> {
  return ["--tls-dir", await tlsDir(role, name)];
}

/** A scheduler client of the test's cluster, with a certificate of `role` (the manager's by default: it may list and trigger). */
export function schedulerClient(address: string, role: Role = "manager", name = ""): RpcClient<typeof schedulerv1.Scheduler> {
  return createClient(schedulerv1.Scheduler, address, { security: pki.security(role, name), serverRoles: ["scheduler"] });
}
