import { createUnixClient, dfdaemonv1 } from "@lacewing/api/dfdaemon-client";
import { DEFAULTS, ErrorCode, LacewingError, formatBytes } from "@lacewing/common";
import { describeFailure, ExitCode } from "../cli/exit-codes.js";
import { assertSocket, clientDeadlineMs } from "../download.js";
import type { DfgetIo } from "../cli/run.js";
import { parseDfcacheCommandLine, resolveDfcacheRequest, type DfcacheRequest } from "./options.js";

/** How long a call other than export may take: import copies the file, so it gets long. */
const CALL_TIMEOUT_MS = { import: 6 * 3_600_000, stat: 30_000, delete: 60_000 } as const;

/** Runs dfcache to completion and returns its exit code. Never throws. */
export async function runDfcache(io: DfgetIo): Promise<number> {
  let json = io.argv.includes("--json");
  let socket = io.env["DFCACHE_SOCKET"] ?? DEFAULTS.dfdaemon.socket;
  try {
    const parsed = parseDfcacheCommandLine(io.argv, { writeOut: (text) => io.stdout.write(text) });
    if (parsed.kind === "exit") return parsed.code;
    json = parsed.request.json;
    const request = await resolveDfcacheRequest(parsed.request, { env: io.env, cwd: io.cwd });
    socket = request.socket;
    await assertSocket(request.socket);
    const result = await call(request, io.signal);
    io.stdout.write(json ? `${JSON.stringify({ ok: true, ...result.json })}\n` : result.text);
    if (!json && result.warning !== undefined) io.stderr.write(`dfcache: warning: ${result.warning}\n`);
    return ExitCode.ok;
  } catch (err) {
    const failure = describeFailure(err, { socket, program: { name: "dfcache", socketEnv: "DFCACHE_SOCKET" } });
    io.stderr.write(`dfcache: ${failure.message}\n`);
    if (json) io.stdout.write(`${JSON.stringify({ ok: false, error: { code: failure.code, message: failure.message } })}\n`);
    return failure.exitCode;
  }
}

interface Output {
  json: Record<string, unknown>;
  text: string;
  /** A success with a caveat, for people (stderr); --json carries the fact itself. */
  warning?: string;
}

async function call(request: DfcacheRequest, signal: AbortSignal | undefined): Promise<Output> {
  const client = createUnixClient(dfdaemonv1.DfdaemonDownload, request.socket);
  const { command, config } = request;
  // 0: no deadline (a relative deadline of 0 would expire at once).
  const options = (timeoutMs: number): { timeoutMs?: number; signal?: AbortSignal } => ({
    ...(timeoutMs > 0 ? { timeoutMs } : {}),
    ...(signal === undefined ? {} : { signal }),
  });
  try {
    switch (command.kind) {
      case "import": {
        const response = await client.importCache(
          { path: command.path, taskId: command.taskId, replicas: config.replicas, ttlMs: BigInt(config.ttl) },
          options(CALL_TIMEOUT_MS.import),
        );
        const expiresAt = Number(response.cache?.expiresAtMs ?? 0n);
        return {
          json: {
            taskId: response.taskId,
            contentLength: Number(response.contentLength),
            digest: response.digest,
            replicas: response.cache?.replicas ?? config.replicas,
            ttlMs: config.ttl,
            expiresAt: new Date(expiresAt).toISOString(),
            announced: response.announced,
          },
          text: `${response.taskId}\n`,
          ...(response.announced
            ? {}
            : { warning: "no scheduler acknowledged the task yet; it is stored here and announced when this node next meets its scheduler" }),
        };
      }
      case "export": {
        // The daemon enforces the deadline; this one only keeps a hung daemon from hanging dfcache.
        const response = await client.exportCache(
          { taskId: command.taskId, outputPath: command.output, timeoutMs: BigInt(config.timeout) },
          options(config.timeout > 0 ? clientDeadlineMs(config.timeout) : 0),
        );
        return {
          json: {
            taskId: response.taskId,
            output: response.outputPath,
            contentLength: Number(response.contentLength),
            elapsedMs: Number(response.elapsedMs),
            traffic: {
              origin: Number(response.traffic?.bytesFromOrigin ?? 0n),
              peers: Number(response.traffic?.bytesFromPeers ?? 0n),
              cache: Number(response.traffic?.bytesFromCache ?? 0n),
            },
          },
          text: "",
        };
      }
      case "stat": {
        const response = await client.statCache({ taskId: command.taskId }, options(CALL_TIMEOUT_MS.stat));
        const contentLength = Number(response.contentLength);
        const expiresAt = Number(response.cache?.expiresAtMs ?? 0n);
        const json = {
          taskId: response.taskId,
          local: response.local,
          persistent: response.cache !== undefined,
          contentLength,
          replicasWanted: response.cache?.replicas ?? 0,
          replicasHeld: response.schedulerKnown ? response.replicasHeld : null,
          holders: response.holderHostIds,
          ttlMs: Number(response.cache?.ttlMs ?? 0n),
          expiresAt: expiresAt > 0 ? new Date(expiresAt).toISOString() : null,
        };
        const held = response.schedulerKnown
          ? `${response.replicasHeld} held (${response.holderHostIds.join(", ") || "none"})`
          : "held unknown (no scheduler answered)";
        const text = [
          `id          ${json.taskId}`,
          `local       ${json.local ? "yes" : "no"}`,
          `persistent  ${json.persistent ? "yes" : "no"}`,
          `size        ${contentLength >= 0 ? `${formatBytes(contentLength)} (${contentLength} bytes)` : "unknown"}`,
          `replicas    ${json.replicasWanted} wanted, ${held}`,
          `expires     ${json.expiresAt ?? "unknown"}`,
        ].join("\n");
        return { json, text: `${text}\n` };
      }
      case "delete": {
        const response = await client.deleteCache({ taskId: command.taskId }, options(CALL_TIMEOUT_MS.delete));
        return {
          json: { taskId: command.taskId, holders: response.holders, local: response.local },
          text: `deleted ${command.taskId} (${response.holders} holder${response.holders === 1 ? "" : "s"} told to remove it)\n`,
        };
      }
    }
  } catch (err) {
    if (signal?.aborted === true) throw new LacewingError(ErrorCode.cancelled, "cancelled", "interrupted", { cause: err });
    throw err;
  } finally {
    client.close();
  }
}
