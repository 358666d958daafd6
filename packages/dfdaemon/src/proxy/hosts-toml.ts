import { access, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode, LacewingError } from "@lacewing/common";
import { isRegistryHost } from "./registry-route.js";

/** One registry containerd should pull through the mirror. */
export interface MirroredRegistry {
  /** Directory name under the config path: the registry host, or `_default`. */
  host: string;
  /** The real registry (`server` in hosts.toml); undefined for `_default`, where containerd uses the pulled host. */
  server: string | undefined;
}

/**
 * Reads a `--registry` entry: `docker.io`, `ghcr.io`, `10.0.0.5:5000`, or
 * with a scheme (`http://10.0.0.5:5000`) for a registry served over plain HTTP.
 */
export function parseRegistryEntry(entry: string): MirroredRegistry {
  const match = /^(?:(https?):\/\/)?([^/]+)\/?$/.exec(entry.trim());
  const host = match?.[2];
  if (!match || host === undefined || !isRegistryHost(host))
    throw new LacewingError(
      ErrorCode.badRequest,
      "invalid_argument",
      `not a registry host: ${JSON.stringify(entry)} (expected e.g. docker.io or http://10.0.0.5:5000)`,
    );
  const scheme = match[1] ?? "https";
  return { host, server: `${scheme}://${host === "docker.io" ? "registry-1.docker.io" : host}` };
}

/** The hosts.toml that sends `registry`'s pulls through the mirror at `mirrorUrl`, with the registry itself as fallback. */
export function renderHostsToml(registry: MirroredRegistry, mirrorUrl: string): string {
  const lines = [
    "# Written by `dfdaemon containerd-config`: pulls go through the Lacewing registry",
    "# mirror on this node (blobs via P2P); containerd falls back to the server when the",
    "# mirror cannot be reached.",
  ];
  if (registry.server !== undefined) lines.push(`server = ${JSON.stringify(registry.server)}`);
  lines.push("", `[host.${JSON.stringify(mirrorUrl)}]`, `  capabilities = ["pull", "resolve"]`, "");
  return lines.join("\n");
}

export type WriteResult = { path: string; state: "written" | "unchanged" } | { path: string; state: "replaced"; backup: string };

/**
 * Writes `configPath/<host>/hosts.toml` for each registry (atomically: a
 * temporary file, then a rename). An existing file with other content is
 * kept beside it as `hosts.toml.bak` (`.bak.1`, `.bak.2`… if that exists).
 */
export async function writeHostsTomls(configPath: string, registries: MirroredRegistry[], mirrorUrl: string): Promise<WriteResult[]> {
  const results: WriteResult[] = [];
  for (const registry of registries) {
    const dir = join(configPath, registry.host);
    const path = join(dir, "hosts.toml");
    const content = renderHostsToml(registry, mirrorUrl);
    await mkdir(dir, { recursive: true });
    const existing = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    if (existing === content) {
      results.push({ path, state: "unchanged" });
      continue;
    }
    let backup: string | undefined;
    if (existing !== undefined) {
      backup = await freeBackupName(path);
      await writeFile(backup, existing, { flag: "wx" });
    }
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, content);
    await rename(tmp, path);
    results.push(backup === undefined ? { path, state: "written" } : { path, state: "replaced", backup });
  }
  return results;
}

async function freeBackupName(path: string): Promise<string> {
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? `${path}.bak` : `${path}.bak.${n}`;
    try {
      await access(candidate);
    } catch {
      return candidate;
    }
  }
}
