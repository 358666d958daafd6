import { once } from "node:events";
import { rename, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { RpcServer, dfdaemonv1, type Download, type MessageInitShape } from "@lacewing/api";
import { ErrorCode, LacewingError } from "@lacewing/common";

type DownloadResponseInit = MessageInitShape<typeof dfdaemonv1.DownloadResponseSchema>;

/** One call the fake received. */
export interface ReceivedDownload {
  download: Download;
  /** Resolves once dfget cancelled the call (Ctrl-C, client-side timeout). */
  cancelled: Promise<void>;
}

/** Content the fake "downloads" for /ok/*. */
export const FAKE_CONTENT = Buffer.from("lacewing fake content\n".repeat(100));

/**
 * A stand-in dfdaemon on a unix socket. What it does depends on the URL path,
 * so one server serves every scenario:
 *   /ok/*              streams started/progress/finished and writes the file (atomically, like the daemon)
 *   /origin-404/*      LW_ERR_ORIGIN_STATUS
 *   /digest-mismatch/* LW_ERR_DIGEST_MISMATCH
 *   /output-error/*    LW_ERR_OUTPUT
 *   /daemon-timeout/*  LW_ERR_TIMEOUT once download.timeoutMs passed
 *   /hang/*            never answers until cancelled
 *   /resume/*          the first call for a URL reports half the bytes, then waits (for the test to kill the
 *                      fake); a later call reports that half as held, finishes, and counts it as cache
 *
 * It can be stopped and started again on the same socket, as a daemon restarts;
 * what it received is kept across restarts.
 */
export class FakeDfdaemon {
  readonly received: ReceivedDownload[] = [];
  #server: RpcServer | undefined;
  #waiters: Array<(call: ReceivedDownload) => void> = [];

  async start(socket: string): Promise<void> {
    const server = new RpcServer({ security: { mode: "insecure" } });
    server.add(dfdaemonv1.DfdaemonDownload, {
      download: (request, context) => this.#download(request.download, context.signal),
      statTask: () => Promise.reject(unimplemented()),
      deleteTask: () => Promise.reject(unimplemented()),
      status: () => Promise.reject(unimplemented()),
      gc: () => Promise.reject(unimplemented()),
      importCache: () => Promise.reject(unimplemented()),
      exportCache: () => Promise.reject(unimplemented()),
      statCache: () => Promise.reject(unimplemented()),
      deleteCache: () => Promise.reject(unimplemented()),
    });
    await server.listen(`unix:${socket}`);
    this.#server = server;
  }

  async close(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
  }

  /** Goes away at once, cutting every call in flight, as a daemon killed with SIGKILL does. */
  async kill(): Promise<void> {
    await this.#server?.close(0);
    this.#server = undefined;
  }

  /** Resolves with the next download call; ask before starting dfget. */
  nextCall(): Promise<ReceivedDownload> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async *#download(download: Download | undefined, signal: AbortSignal): AsyncIterable<DownloadResponseInit> {
    if (download === undefined) throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "download is required");
    const call: ReceivedDownload = {
      download,
      cancelled: signal.aborted ? Promise.resolve() : once(signal, "abort").then(() => undefined),
    };
    this.received.push(call);
    for (const waiter of this.#waiters.splice(0)) waiter(call);

    const path = new URL(download.url).pathname;
    const scenario = path.split("/")[1];
    const half = BigInt(FAKE_CONTENT.length / 2);
    const total = BigInt(FAKE_CONTENT.length);
    let held = 0n;
    yield { response: { case: "started", value: { taskId: "task-1", hostId: "host-1", contentLength: BigInt(FAKE_CONTENT.length) } } };
    switch (scenario) {
      case "ok":
        break;
      case "resume":
        if (this.received.filter((earlier) => earlier.download.url === download.url).length === 1) {
          yield { response: { case: "progress", value: { completedBytes: half, contentLength: total, completedPieces: 1, totalPieces: 2 } } };
          await call.cancelled;
          return;
        }
        held = half;
        break;
      case "origin-404":
        throw new LacewingError(ErrorCode.originStatus, "failed_precondition", `origin answered 404 Not Found for ${download.url}`);
      case "digest-mismatch":
        throw new LacewingError(ErrorCode.digestMismatch, "failed_precondition", `digest mismatch: expected ${download.digest}, got sha256:00ff`);
      case "output-error":
        throw new LacewingError(ErrorCode.output, "permission_denied", `cannot write ${download.outputPath}: EACCES`);
      case "daemon-timeout":
        await sleep(Number(download.timeoutMs));
        throw new LacewingError(ErrorCode.timeout, "deadline_exceeded", `download timed out after ${download.timeoutMs}ms`);
      case "hang":
        await call.cancelled;
        return;
      default:
        throw new LacewingError(ErrorCode.internal, "internal", `fake daemon has no scenario ${scenario ?? ""}`);
    }
    yield { response: { case: "progress", value: { completedBytes: half, contentLength: total, completedPieces: 1, totalPieces: 2 } } };
    yield { response: { case: "progress", value: { completedBytes: total, contentLength: total, completedPieces: 2, totalPieces: 2 } } };
    const partial = `${download.outputPath}.lacewing-partial`;
    await writeFile(partial, FAKE_CONTENT);
    await rename(partial, download.outputPath);
    yield {
      response: {
        case: "finished",
        value: {
          taskId: "task-1",
          contentLength: total,
          digest: download.digest || "sha256:fake",
          outputPath: download.outputPath,
          elapsedMs: 42n,
          traffic:
            held > 0n
              ? { bytesFromOrigin: total - held, bytesFromPeers: 0n, bytesFromCache: held }
              : { bytesFromOrigin: 100n, bytesFromPeers: total - 100n, bytesFromCache: 0n },
        },
      },
    };
  }
}

function unimplemented(): LacewingError {
  return new LacewingError(ErrorCode.unimplemented, "failed_precondition", "not implemented by the fake daemon");
}
