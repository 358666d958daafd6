import { createClient, managerv1, type RpcClient } from "@lacewing/api";
import { LocalPki, type Role } from "@lacewing/common";

/** The cluster CA of the manager's tests in this process. */
export const pki = new LocalPki();

/** A client of the manager's gRPC API holding a certificate of `role` (the manager's own by default). */
export function managerClient(port: number, role: Role = "manager"): RpcClient<typeof managerv1.Manager> {
  return createClient(managerv1.Manager, `127.0.0.1:${port}`, { security: pki.security(role), serverRoles: ["manager"] });
}
