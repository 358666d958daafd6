import { ErrorCode } from "../error-codes.js";
import { field } from "../config.js";
import { LacewingError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Role } from "./identity.js";
import { loadTlsMaterial, type TlsMaterial } from "./tls-material.js";

/**
 * How a process talks to the others: mutual TLS with the cluster CA, or,
 * only when asked for explicitly, in the clear with nobody authenticated.
 */
export type Security = { readonly mode: "tls"; readonly material: TlsMaterial } | { readonly mode: "insecure" };

/** The security settings every process's config schema includes (one declaration, four processes). */
export function securityConfigFields(envPrefix: string) {
  return {
    tlsDir: field.string({
      description: "Directory with ca.crt (the cluster CA), tls.crt and tls.key (this process's certificate), as a Kubernetes TLS Secret mounts them",
      default: "",
      env: `${envPrefix}_TLS_DIR`,
      placeholder: "<dir>",
    }),
    insecure: field.boolean({
      description: "Run without TLS: no caller is authenticated and anyone who reaches a port may call it. Loopback addresses only, unless forceInsecure",
      default: false,
      env: `${envPrefix}_INSECURE`,
    }),
    forceInsecure: field.boolean({
      description: "With insecure: listen in the clear on non-loopback addresses too (never do this on a shared network)",
      default: false,
      env: `${envPrefix}_FORCE_INSECURE`,
    }),
  };
}

export interface SecuritySettings {
  tlsDir: string;
  insecure: boolean;
  forceInsecure: boolean;
}

/**
 * Decides a process's security from its settings: TLS from `tlsDir` (its
 * certificate must carry `role`), or insecure when asked for explicitly —
 * refused on a non-loopback listen address unless forced, and loud either
 * way. Fails with LW_ERR_CONFIG / LW_ERR_TLS naming what is wrong.
 */
export function securityOf(settings: SecuritySettings, options: { role: Role; listen: readonly string[]; log?: Logger }): Security {
  if (settings.insecure && settings.tlsDir !== "") throw configError("insecure", "cannot be combined with tlsDir: choose TLS (tlsDir) or --insecure");
  if (!settings.insecure) {
    if (settings.tlsDir === "")
      throw configError(
        "tlsDir",
        "is required: give the directory holding ca.crt, tls.crt and tls.key (`lacewing-manager certs` makes them), or run with --insecure on loopback",
      );
    return { mode: "tls", material: loadTlsMaterial(settings.tlsDir, options.role) };
  }
  const exposed = options.listen.filter((address) => !isLoopbackAddress(address));
  if (exposed.length > 0 && !settings.forceInsecure)
    throw configError(
      "insecure",
      `refuses to listen in the clear on ${exposed.join(", ")}: use tlsDir, listen on loopback, or add --force-insecure if this network is yours alone`,
    );
  options.log?.warn(
    { listen: options.listen },
    "INSECURE: TLS is off; every caller is trusted and every byte travels in the clear. Use --tls-dir outside a throwaway test.",
  );
  return { mode: "insecure" };
}

/** True for a loopback host, a unix socket, or a `host:port` on one. */
export function isLoopbackAddress(address: string): boolean {
  if (address.startsWith("unix:") || address.startsWith("/")) return true;
  const host = /^\[([^\]]+)\](?::\d+)?$/.exec(address)?.[1] ?? (address.split(":").length === 2 ? address.split(":")[0]! : address);
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function configError(key: string, problem: string): LacewingError {
  return new LacewingError(ErrorCode.config, "invalid_argument", `invalid config: ${key} ${problem}`, { details: { key } });
}
