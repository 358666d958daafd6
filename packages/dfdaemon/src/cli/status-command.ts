import { Command } from "commander";
import { createUnixClient, dfdaemonv1, type RpcClient } from "@lacewing/api";
import { DEFAULTS, errorMessage, formatBytes } from "@lacewing/common";

type StatusClient = RpcClient<typeof dfdaemonv1.DfdaemonDownload>;

/** `dfdaemon status`: the first thing to run on a node where pulls are slow. */
export function statusCommand(): Command {
  return new Command("status")
    .description("show whether the local daemon is up, which schedulers it reaches, its cache use and recent failures")
    .option("--socket <path>", "unix socket of the daemon", DEFAULTS.dfdaemon.socket)
    .option("--json", "print the status as JSON")
    .action(async (flags: { socket: string; json?: boolean }) => {
      const client: StatusClient = createUnixClient(dfdaemonv1.DfdaemonDownload, flags.socket);
      try {
        const status = await client.status({}, { timeoutMs: 5_000 }).catch((err: unknown) => {
          throw new Error(`no dfdaemon answers on ${flags.socket}: ${errorMessage(err)}`);
        });
        process.stdout.write(flags.json === true ? `${JSON.stringify(statusJson(status), null, 2)}\n` : formatStatus(status));
        // An operator's script can tell "up but cut off from every scheduler" from "healthy".
        if (status.schedulers.length > 0 && !status.schedulers.some((s) => s.reachable)) process.exitCode = 2;
      } finally {
        client.close();
      }
    });
}

export function statusJson(status: dfdaemonv1.StatusResponse): Record<string, unknown> {
  return {
    up: true,
    hostId: status.hostId,
    version: status.version,
    seed: status.seed,
    uptimeMs: Number(status.uptimeMs),
    schedulers: status.schedulers.map((s) => ({ address: s.address, reachable: s.reachable, lastError: s.lastError })),
    cache: { bytes: Number(status.cacheBytes), quotaBytes: Number(status.cacheQuotaBytes), tasks: status.taskCount },
    activeDownloads: status.activeDownloads,
    recentFailures: status.recentFailures.map((f) => ({
      taskId: f.taskId,
      url: f.url,
      description: f.description,
      at: new Date(Number(f.atMs)).toISOString(),
    })),
  };
}

export function formatStatus(status: dfdaemonv1.StatusResponse): string {
  const lines = [
    `dfdaemon ${status.version} up ${Math.round(Number(status.uptimeMs) / 1000)}s, host ${status.hostId}${status.seed ? " (seed peer)" : ""}`,
    `schedulers:`,
    ...(status.schedulers.length === 0
      ? ["  none configured: every download goes straight to the origin"]
      : status.schedulers.map((s) => `  ${s.address}  ${s.reachable ? "reachable" : `UNREACHABLE: ${tidyError(s.lastError)}`}`)),
    `cache: ${formatBytes(Number(status.cacheBytes))}${status.cacheQuotaBytes > 0n ? ` of ${formatBytes(Number(status.cacheQuotaBytes))}` : ""} in ${status.taskCount} tasks, ${status.activeDownloads} downloading`,
    `recent failures:${status.recentFailures.length === 0 ? " none" : ""}`,
    ...status.recentFailures
      .slice(-10)
      .reverse()
      .map((f) => `  ${new Date(Number(f.atMs)).toISOString()}  ${f.url}  ${f.description}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** grpc-js wraps a refused connection in boilerplate; an operator needs the cause. */
function tidyError(message: string): string {
  return message
    .replace(/^No connection established\. Last error: (?:Error: )?/, "")
    .replace(/\.?\s*Resolution note:\s*$/, "")
    .trim();
}
