import { stat } from "node:fs/promises";
import { createUnixClient, dfdaemonv1, type DownloadSchema, type MessageInitShape } from "@lacewing/api/dfdaemon-client";
import { ErrorCode, LacewingError, MAX_TIMER_MS, silentLogger, type Logger } from "@lacewing/common";

/** The `Download` message sent to the daemon, as a plain object. */
export type DownloadInit = MessageInitShape<typeof DownloadSchema>;

/** What a finished download reports; also the `--json` output's fields. */
export interface DownloadResult {
  taskId: string;
  url: string;
  output: string;
  /** -1 if the daemon never learnt it. */
  contentLength: number;
  digest: string;
  elapsedMs: number;
  /** Bytes by where they came from. */
  traffic: { origin: number; peers: number; cache: number };
}

export interface DownloadStartedEvent {
  taskId: string;
  /** The daemon's host id. */
  hostId: string;
  contentLength: number;
}

export interface DownloadProgressEvent {
  completedBytes: number;
  /** -1 while unknown. */
  contentLength: number;
  completedPieces: number;
  totalPieces: number;
}

export interface DownloadOptions {
  /** Absolute path of the dfdaemon socket. */
  socket: string;
  /** Aborting cancels the download (the daemon sees the call cancelled); rejects with LW_ERR_CANCELLED. */
  signal?: AbortSignal;
  /**
   * Client-side deadline in milliseconds, 0 or absent for none. The daemon
   * enforces `download.timeoutMs` itself; this one fires a little later so
   * a daemon that hangs cannot hang dfget, while a daemon that answers in
   * time gets to report its own, more precise error.
   */
  timeoutMs?: number;
  logger?: Logger;
  onStarted?: (event: DownloadStartedEvent) => void;
  onProgress?: (event: DownloadProgressEvent) => void;
}

/**
 * How long after the daemon's deadline dfget gives up by itself. Never past
 * the timer limit: a longer setTimeout would fire at once, so at the largest
 * timeout the two deadlines meet.
 */
export function clientDeadlineMs(timeoutMs: number): number {
  return Math.min(MAX_TIMER_MS, timeoutMs + Math.min(5_000, 500 + timeoutMs * 0.05));
}

/**
 * Asks the local dfdaemon to download `request` and place the file at
 * `request.outputPath`. Errors from the daemon arrive as RpcErrors carrying
 * the daemon's LW_ERR_* code; the CLI turns them into exit codes.
 */
export async function download(request: DownloadInit, options: DownloadOptions): Promise<DownloadResult> {
  const logger = options.logger ?? silentLogger();
  await assertSocket(options.socket);
  const cancel = new AbortController();
  const abortFromCaller = (): void => cancel.abort();
  options.signal?.addEventListener("abort", abortFromCaller, { once: true });
  if (options.signal?.aborted) cancel.abort();
  let timedOut = false;
  const timer =
    options.timeoutMs !== undefined && options.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          cancel.abort();
        }, clientDeadlineMs(options.timeoutMs))
      : undefined;
  const client = createUnixClient(dfdaemonv1.DfdaemonDownload, options.socket);
  try {
    for await (const message of client.download({ download: request }, { signal: cancel.signal })) {
      const response = message.response;
      switch (response.case) {
        case "started":
          logger.debug({ taskId: response.value.taskId, hostId: response.value.hostId }, "download started");
          options.onStarted?.({
            taskId: response.value.taskId,
            hostId: response.value.hostId,
            contentLength: Number(response.value.contentLength),
          });
          break;
        case "progress":
          options.onProgress?.({
            completedBytes: Number(response.value.completedBytes),
            contentLength: Number(response.value.contentLength),
            completedPieces: response.value.completedPieces,
            totalPieces: response.value.totalPieces,
          });
          break;
        case "finished": {
          const finished = response.value;
          logger.debug({ taskId: finished.taskId, elapsedMs: Number(finished.elapsedMs) }, "download finished");
          return {
            taskId: finished.taskId,
            url: request.url ?? "",
            output: finished.outputPath || (request.outputPath ?? ""),
            contentLength: Number(finished.contentLength),
            digest: finished.digest,
            elapsedMs: Number(finished.elapsedMs),
            traffic: {
              origin: Number(finished.traffic?.bytesFromOrigin ?? 0n),
              peers: Number(finished.traffic?.bytesFromPeers ?? 0n),
              cache: Number(finished.traffic?.bytesFromCache ?? 0n),
            },
          };
        }
        default:
          break;
      }
    }
    throw new LacewingError(ErrorCode.protocol, "internal", "the daemon ended the download without reporting a result");
  } catch (err) {
    // Our own abort surfaces as a CANCELLED RpcError; say which abort it was.
    if (timedOut) {
      throw new LacewingError(ErrorCode.timeout, "deadline_exceeded", `download timed out after ${formatMs(options.timeoutMs ?? 0)}`, { cause: err });
    }
    if (options.signal?.aborted) throw new LacewingError(ErrorCode.cancelled, "cancelled", "download cancelled", { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", abortFromCaller);
    client.close();
  }
}

/** Fails fast, with a clear reason, when nothing can be listening at `socket`. */
export async function assertSocket(socket: string): Promise<void> {
  const info = await stat(socket).catch((err: NodeJS.ErrnoException) => err);
  if (info instanceof Error) {
    throw new LacewingError(ErrorCode.noDaemon, "unavailable", `cannot reach ${socket} (${info.code ?? info.message})`, { cause: info });
  }
  if (!info.isSocket()) throw new LacewingError(ErrorCode.noDaemon, "unavailable", `${socket} is not a socket (ENOTSOCK)`);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
