import { stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { GrpcStatus, RpcError, createUnixClient, dfdaemonv1, type DownloadSchema, type MessageInitShape } from "@lacewing/api/dfdaemon-client";
import { ErrorCode, LacewingError, MAX_TIMER_MS, errorMessage, silentLogger, type Logger } from "@lacewing/common";

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
  /** Bytes by where they came from; after a reconnect, what the daemon had kept counts as cache. */
  traffic: { origin: number; peers: number; cache: number };
  /** How often the daemon went away mid-download and dfget carried on once it was back. */
  reconnects: number;
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
  /**
   * How long to wait, in milliseconds, for a daemon that went away
   * mid-download (restarted, crashed) to come back before failing; 0 or
   * absent fails at once. Only after the daemon answered a first time: a
   * daemon that is not there at the start fails fast.
   */
  reconnectTimeoutMs?: number;
  onReconnecting?: (event: DownloadReconnectEvent) => void;
}

/**
 * How long after the daemon's deadline dfget gives up by itself. Never past
 * the timer limit: a longer setTimeout would fire at once, so at the largest
 * timeout the two deadlines meet.
 */
export function clientDeadlineMs(timeoutMs: number): number {
  return Math.min(MAX_TIMER_MS, timeoutMs + Math.min(5_000, 500 + timeoutMs * 0.05));
}

/** Reported each time dfget lost the daemon mid-download and starts waiting for it. */
export interface DownloadReconnectEvent {
  /** 1 for the first loss in this download. */
  reconnect: number;
  /** How the call broke, e.g. "14 UNAVAILABLE: Connection dropped". */
  reason: string;
  /** How long dfget waits for the daemon to come back. */
  waitMs: number;
}

/** Backoff between tries to reach a daemon that went away: quick at first (a restart takes a second or two), then at most every 2 s. */
const RECONNECT_BACKOFF = { initialMs: 100, maxMs: 2_000 };
/**
 * Losses in a row after which dfget stops re-issuing the download even
 * within its reconnect timeout, when the daemon came back each time but
 * no byte landed in between: a daemon that dies of this download would
 * otherwise be restarted into it forever.
 */
const MAX_FRUITLESS_RECONNECTS = 3;

/**
 * Asks the local dfdaemon to download `request` and place the file at
 * `request.outputPath`. Errors from the daemon arrive as RpcErrors carrying
 * the daemon's LW_ERR_* code; the CLI turns them into exit codes.
 *
 * When the daemon goes away mid-download (a restart, a crash: the call
 * breaks in transport, not with an error the daemon chose) and
 * `reconnectTimeoutMs` is set, dfget waits up to that long for the daemon to
 * answer again and re-issues the same request (with its headers, which the
 * daemon never stores); the daemon resumes from the pieces it kept.
 * `onStarted` reports once, progress carries on from what the daemon holds,
 * and the result counts the reconnects. The caller's signal and the
 * deadline still stop everything at once, waits included.
 */
export async function download(request: DownloadInit, options: DownloadOptions): Promise<DownloadResult> {
  const logger = options.logger ?? silentLogger();
  await assertSocket(options.socket);
  const cancel = new AbortController();
  const abortFromCaller = (): void => cancel.abort();
  options.signal?.addEventListener("abort", abortFromCaller, { once: true });
  if (options.signal?.aborted) cancel.abort();
  let timedOut = false;
  const startedAt = Date.now();
  const timer =
    options.timeoutMs !== undefined && options.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          cancel.abort();
        }, clientDeadlineMs(options.timeoutMs))
      : undefined;
  const reconnectTimeoutMs = options.reconnectTimeoutMs ?? 0;
  let reconnects = 0;
  let started = false;
  /** When the daemon was lost, while dfget waits for it. */
  let lostAt: number | undefined;
  let tries = 0;
  let fruitless = 0;
  let bytesAtLoss = -1;
  let completedBytes = -1;
  try {
    for (;;) {
      let answered = false;
      try {
        if (lostAt !== undefined) await assertSocket(options.socket);
        const attempt = lostAt === undefined ? request : { ...request, timeoutMs: remainingTimeout(request, startedAt) };
        const result = await downloadOnce(attempt, options, cancel.signal, logger, {
          onMessage: () => {
            answered = true;
            lostAt = undefined;
            tries = 0;
          },
          onStarted: (event) => {
            if (started) return;
            started = true;
            options.onStarted?.(event);
          },
          onProgress: (event) => {
            completedBytes = Math.max(completedBytes, event.completedBytes);
            options.onProgress?.(event);
          },
        });
        // After a reconnect the daemon's clock started with the re-issued call; the download took all of it.
        return { ...result, ...(reconnects > 0 ? { elapsedMs: Date.now() - startedAt } : {}), reconnects };
      } catch (err) {
        if (cancel.signal.aborted || !started || reconnectTimeoutMs <= 0 || !daemonWentAway(err)) throw err;
        if (answered) {
          // The daemon answered since the last loss, so this is a new one.
          fruitless = completedBytes > bytesAtLoss ? 0 : fruitless + 1;
          bytesAtLoss = completedBytes;
          if (fruitless >= MAX_FRUITLESS_RECONNECTS) throw err;
          reconnects++;
          lostAt = Date.now();
          const reason = errorMessage(err);
          logger.warn({ reconnect: reconnects, reason, waitMs: reconnectTimeoutMs }, "lost the daemon mid-download; waiting for it to come back");
          options.onReconnecting?.({ reconnect: reconnects, reason, waitMs: reconnectTimeoutMs });
        }
        lostAt ??= Date.now();
        if (Date.now() - lostAt >= reconnectTimeoutMs) {
          throw new LacewingError(
            ErrorCode.noDaemon,
            "unavailable",
            `it went away during the download and was not back within ${formatMs(reconnectTimeoutMs)}`,
            { cause: err },
          );
        }
        const backoff = Math.min(RECONNECT_BACKOFF.maxMs, RECONNECT_BACKOFF.initialMs * 2 ** tries++);
        await sleep(Math.min(backoff * (0.5 + Math.random() / 2), reconnectTimeoutMs - (Date.now() - lostAt)), undefined, { signal: cancel.signal }).catch(
          () => {
            throw err;
          },
        );
      }
    }
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
  }
}

interface CallHooks {
  /** Any message from the daemon: it is there. */
  onMessage: () => void;
  onStarted: (event: DownloadStartedEvent) => void;
  onProgress: (event: DownloadProgressEvent) => void;
}

/** One Download call, from the request to its result. */
async function downloadOnce(
  request: DownloadInit,
  options: DownloadOptions,
  signal: AbortSignal,
  logger: Logger,
  hooks: CallHooks,
): Promise<Omit<DownloadResult, "reconnects">> {
  const client = createUnixClient(dfdaemonv1.DfdaemonDownload, options.socket);
  try {
    for await (const message of client.download({ download: request }, { signal })) {
      hooks.onMessage();
      const response = message.response;
      switch (response.case) {
        case "started":
          logger.debug({ taskId: response.value.taskId, hostId: response.value.hostId }, "download started");
          hooks.onStarted({
            taskId: response.value.taskId,
            hostId: response.value.hostId,
            contentLength: Number(response.value.contentLength),
          });
          break;
        case "progress":
          hooks.onProgress({
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
  } finally {
    client.close();
  }
}

/**
 * Whether a failed call means the daemon itself went away (its socket
 * closed or gone, the connection refused, the daemon shutting down) rather
 * than a failed download: only transport failures count, never an error
 * the daemon chose and labelled.
 */
export function daemonWentAway(err: unknown): boolean {
  if (err instanceof RpcError) return err.transport && (err.status === GrpcStatus.UNAVAILABLE || err.status === GrpcStatus.CANCELLED);
  // assertSocket's: the socket file is gone or not yet a socket while the daemon restarts.
  return err instanceof LacewingError && err.code === ErrorCode.noDaemon;
}

/** The daemon's deadline for a re-issued request: what is left of the first one (never 0, which would mean none). */
function remainingTimeout(request: DownloadInit, startedAt: number): bigint {
  const timeoutMs = request.timeoutMs ?? 0n;
  if (timeoutMs <= 0n) return 0n;
  const left = Number(timeoutMs) - (Date.now() - startedAt);
  return BigInt(Math.max(1, Math.ceil(left)));
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
