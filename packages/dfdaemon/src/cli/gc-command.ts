import { stat } from "node:fs/promises";
import { Command } from "commander";
import { createUnixClient, dfdaemonv1 } from "@lacewing/api";
import { ErrorCode, DEFAULTS, LacewingError, formatBytes } from "@lacewing/common";
import { formatAge } from "../gc/eviction-policy.js";

/**
 * `dfdaemon gc`: asks a running daemon to collect its cache now, or with
 * `--dry-run` only to say what it would evict and why; `--task ID` evicts
 * one task (refused while it is downloaded or read).
 */
export function gcCommand(): Command {
  return new Command("gc")
    .description("collect a running daemon's cache now; --dry-run lists what would be evicted and why")
    .option("--dry-run", "plan only: nothing is removed")
    .option("--task <id>", "evict this task (refused while it is downloaded or read)")
    .option("--socket <path>", "unix socket of the daemon", process.env["DFDAEMON_SOCKET"] ?? DEFAULTS.dfdaemon.socket)
    .option("--json", "print the result as JSON")
    .action(async (flags: { dryRun?: boolean; task?: string; socket: string; json?: boolean }) => {
      const info = await stat(flags.socket).catch(() => undefined);
      if (!info?.isSocket()) throw new LacewingError(ErrorCode.noDaemon, "unavailable", `no dfdaemon is listening on ${flags.socket} (use --socket)`);
      const client = createUnixClient(dfdaemonv1.DfdaemonDownload, flags.socket);
      try {
        if (flags.task !== undefined) {
          await client.deleteTask({ taskId: flags.task }, { timeoutMs: 60_000 });
          process.stdout.write(flags.json === true ? `${JSON.stringify({ ok: true, evicted: flags.task })}\n` : `evicted ${flags.task}\n`);
          return;
        }
        const response = await client.gc({ dryRun: flags.dryRun === true }, { timeoutMs: 300_000 });
        const summary = gcSummaryOf(response);
        process.stdout.write(flags.json === true ? `${JSON.stringify(summary)}\n` : formatGc(summary, Date.now()));
      } finally {
        client.close();
      }
    });
}

export interface GcSummary {
  ok: true;
  dryRun: boolean;
  evictions: Array<{ taskId: string; url: string; bytes: number; lastAccessedAtMs: number; reason: string; detail: string; finished: boolean }>;
  usage: {
    cacheBytes: number;
    quotaBytes: number;
    filesystemBytes: number;
    filesystemUsedBytes: number;
    highWatermarkPercent: number;
    lowWatermarkPercent: number;
    taskCount: number;
    busyTaskCount: number;
    taskTtlMs: number;
  };
}

/** The `--json` shape: plain numbers, times in milliseconds since the epoch. */
export function gcSummaryOf(response: dfdaemonv1.GcResponse): GcSummary {
  const u = response.usage;
  return {
    ok: true,
    dryRun: response.dryRun,
    evictions: response.evictions.map((e) => ({
      taskId: e.taskId,
      url: e.url,
      bytes: Number(e.bytes),
      lastAccessedAtMs: Number(e.lastAccessedAtMs),
      reason: e.reason,
      detail: e.detail,
      finished: e.finished,
    })),
    usage: {
      cacheBytes: Number(u?.cacheBytes ?? 0n),
      quotaBytes: Number(u?.quotaBytes ?? 0n),
      filesystemBytes: Number(u?.filesystemBytes ?? 0n),
      filesystemUsedBytes: Number(u?.filesystemUsedBytes ?? 0n),
      highWatermarkPercent: u?.highWatermarkPercent ?? 0,
      lowWatermarkPercent: u?.lowWatermarkPercent ?? 0,
      taskCount: u?.taskCount ?? 0,
      busyTaskCount: u?.busyTaskCount ?? 0,
      taskTtlMs: Number(u?.taskTtlMs ?? 0n),
    },
  };
}

/** One line per eviction, then the cache as the collector saw it. */
export function formatGc(summary: GcSummary, now: number): string {
  const total = summary.evictions.reduce((sum, e) => sum + e.bytes, 0);
  const count = summary.evictions.length;
  const lines = [`${summary.dryRun ? "would evict" : "evicted"} ${count} task${count === 1 ? "" : "s"}, ${formatBytes(total)}`];
  for (const e of summary.evictions) {
    const state = e.finished ? "" : " (unfinished)";
    lines.push(
      `  ${e.reason.padEnd(9)} ${e.taskId.slice(0, 12)}  ${formatBytes(e.bytes).padStart(10)}  used ${formatAge(now - e.lastAccessedAtMs)} ago  ${e.url}${state}: ${e.detail}`,
    );
  }
  const u = summary.usage;
  const quota = u.quotaBytes > 0 ? `, quota ${formatBytes(u.quotaBytes)}` : ", no quota";
  const fs =
    u.filesystemBytes > 0 ? `; filesystem ${Math.round((u.filesystemUsedBytes / u.filesystemBytes) * 100)}% of ${formatBytes(u.filesystemBytes)} used` : "";
  lines.push(
    `cache ${formatBytes(u.cacheBytes)} in ${u.taskCount} tasks (${u.busyTaskCount} in use)${quota}${fs}; ` +
      `watermarks ${u.highWatermarkPercent}%/${u.lowWatermarkPercent}%, ttl ${formatAge(u.taskTtlMs)}`,
  );
  return `${lines.join("\n")}\n`;
}
