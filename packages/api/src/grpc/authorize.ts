import { ErrorCode, LacewingError, type Identity, type Role } from "@lacewing/common";
import type { CallContext } from "./types.js";

/**
 * The caller's identity if it holds one of `roles`; throws
 * LW_ERR_PERMISSION_DENIED otherwise. On an insecure server every caller
 * passes (and the result is undefined): that mode was asked for explicitly.
 */
export function requireRole(context: CallContext, roles: readonly Role[], action: string): Identity | undefined {
  if (!context.secure) return undefined;
  const caller = context.caller;
  if (caller === undefined || !roles.includes(caller.role))
    throw new LacewingError(
      ErrorCode.permissionDenied,
      "permission_denied",
      `${action} needs a ${roles.join(" or ")} certificate; the caller is ${caller === undefined ? "no cluster member" : `a ${caller.role}`}`,
    );
  return caller;
}

/** The caller's IP address from grpc-js's peer string ("1.2.3.4:5678", "[::1]:5678", "ipv4:…"). */
export function callerIp(context: CallContext): string {
  const peer = context.peer.replace(/^ipv[46]:/, "");
  const bracketed = /^\[([^\]]+)\]/.exec(peer);
  if (bracketed !== null) return bracketed[1]!;
  const at = peer.lastIndexOf(":");
  return at > 0 && peer.indexOf(":") === at ? peer.slice(0, at) : peer;
}
