import { DEFAULTS, createLogger, redactUrl, silentLogger } from "@lacewing/common";
import { download, type DownloadResult } from "../download.js";
import { resolveHubUrl } from "./hub-url.js";
import type { ListerRegistry } from "../directory/listers.js";
import { describeFailure, ExitCode, type Failure } from "./exit-codes.js";
import { parseCommandLine, resolveRequest, type DfgetRequest } from "./options.js";
import { createProgressRenderer, formatElapsed, formatSummary, type ProgressRenderer } from "./progress.js";

/** The process around one dfget run; the bin passes the real one, tests may pass fakes. */
export interface DfgetIo {
  /** Arguments after `node dfget.js`. */
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: { write(chunk: string): unknown };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
  now?: () => number;
  /** Directory listers for `-r` by URL scheme; dfget's own (directory/listers.ts) unless a test passes fakes. */
  listers?: ListerRegistry;
}

/** Runs dfget to completion and returns its exit code. Never throws. */
export async function runDfget(io: DfgetIo): Promise<number> {
  // Known before parsing so that even a usage error is reported as JSON.
  let json = io.argv.includes("--json");
  let request: DfgetRequest | undefined;
  try {
    const parsed = parseCommandLine(io.argv, { writeOut: (text) => io.stdout.write(text) });
    if (parsed.kind === "exit") return parsed.code;
    json = parsed.commandLine.json;
    if (parsed.commandLine.recursive) {
      // Loaded only for -r: a single-file dfget's start-up, paid on every node at once, does not carry it.
      const { runDirectory } = await import("./run-directory.js");
      const outcome = await runDirectory(parsed.commandLine, io);
      if (outcome.failure !== undefined) io.stderr.write(`dfget: ${outcome.failure.message}\n`);
      return outcome.exitCode;
    }
    request = await resolveHubUrl(await resolveRequest(parsed.commandLine, { env: io.env, cwd: io.cwd }), io.env, io.signal);
    const result = await downloadWithFeedback(request, io);
    if (json) io.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
    else if (io.stderr.isTTY === true) io.stderr.write(`${formatSummary(result)}\n`);
    return ExitCode.ok;
  } catch (err) {
    const failure = describeFailure(err, { socket: request?.socket ?? io.env["DFGET_SOCKET"] ?? DEFAULTS.dfdaemon.socket });
    report(failure, json, io);
    return failure.exitCode;
  }
}

async function downloadWithFeedback(request: DfgetRequest, io: DfgetIo): Promise<DownloadResult> {
  const logger = request.logLevel === "silent" ? silentLogger() : createLogger({ name: "dfget", level: request.logLevel, destination: io.stderr });
  // Query strings may hold signed-URL credentials, and headers are never logged.
  logger.info({ url: redactUrl(request.download.url, { query: "all" }), output: request.download.outputPath, socket: request.socket }, "download requested");
  const bar: ProgressRenderer | undefined =
    request.progress && !request.json && io.stderr.isTTY === true
      ? createProgressRenderer({ stream: io.stderr, ...(io.now === undefined ? {} : { now: io.now }) })
      : undefined;
  try {
    return await download(request.download, {
      socket: request.socket,
      timeoutMs: request.timeoutMs,
      reconnectTimeoutMs: request.reconnectTimeoutMs,
      logger,
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      ...(bar === undefined
        ? {}
        : {
            onStarted: (event) => bar.update(0, event.contentLength),
            onProgress: (event) => bar.update(event.completedBytes, event.contentLength),
            // Said once per loss above the bar, which stands still until the daemon is back.
            onReconnecting: (event) => {
              bar.clear();
              io.stderr.write(`dfget: lost the daemon (${event.reason}); waiting up to ${formatElapsed(event.waitMs)} for it to come back\n`);
            },
          }),
    });
  } finally {
    bar?.clear();
  }
}

function report(failure: Failure, json: boolean, io: DfgetIo): void {
  io.stderr.write(`dfget: ${failure.message}\n`);
  if (json) io.stdout.write(`${JSON.stringify({ ok: false, error: { code: failure.code, message: failure.message } })}\n`);
}
