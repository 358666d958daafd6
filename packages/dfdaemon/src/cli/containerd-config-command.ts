import { Command } from "commander";
import { DEFAULTS } from "@lacewing/common";
import { parseRegistryEntry, writeHostsTomls, type MirroredRegistry } from "../proxy/hosts-toml.js";

/**
 * `dfdaemon containerd-config`: writes containerd's `hosts.toml` files so
 * pulls from the given registries (and, through `_default`, from any other)
 * go through this node's registry mirror.
 */
export function containerdConfigCommand(): Command {
  return new Command("containerd-config")
    .description("write containerd hosts.toml files that send pulls through this node's registry mirror")
    .requiredOption("--registry <hosts>", "registries to mirror, comma-separated (docker.io,ghcr.io,http://10.0.0.5:5000)")
    .option("--config-path <dir>", "containerd's registry config directory", "/etc/containerd/certs.d")
    .option("--proxy-host <host>", "address containerd reaches the mirror at", "127.0.0.1")
    .option("--proxy-port <port>", "the daemon's --proxy-port", String(DEFAULTS.dfdaemon.proxyPort))
    .option("--no-default", "do not write _default/hosts.toml (the mirror for every other registry)")
    .action(async (flags: { registry: string; configPath: string; proxyHost: string; proxyPort: string; default: boolean }) => {
      const port = Number(flags.proxyPort);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--proxy-port must be a port 1-65535, got ${JSON.stringify(flags.proxyPort)}`);
      const host = flags.proxyHost.includes(":") && !flags.proxyHost.startsWith("[") ? `[${flags.proxyHost}]` : flags.proxyHost;
      const registries: MirroredRegistry[] = flags.registry
        .split(",")
        .filter((entry) => entry.trim() !== "")
        .map(parseRegistryEntry);
      if (flags.default) registries.push({ host: "_default", server: undefined });
      const results = await writeHostsTomls(flags.configPath, registries, `http://${host}:${port}`);
      for (const result of results) {
        if (result.state === "replaced") console.log(`${result.path}: written (previous content kept in ${result.backup})`);
        else console.log(`${result.path}: ${result.state}`);
      }
    });
}
