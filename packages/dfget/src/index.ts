/**
 * dfget: the command-line downloader. It asks the local dfdaemon to fetch a
 * URL (peer-to-peer, verified) and place the file at an output path.
 *
 * ```ts
 * const result = await download(
 *   { url: "https://example.com/big.iso", outputPath: "/tmp/big.iso" },
 *   { socket: "/run/lacewing/dfdaemon.sock", onProgress: (p) => console.log(p.completedBytes) },
 * );
 * ```
 */
export {
  download,
  clientDeadlineMs,
  type DownloadInit,
  type DownloadOptions,
  type DownloadProgressEvent,
  type DownloadReconnectEvent,
  type DownloadResult,
  type DownloadStartedEvent,
} from "./download.js";
export { ExitCode, describeFailure, type ExitCodeValue, type Failure, type FailureContext } from "./cli/exit-codes.js";
export { runDfget, type DfgetIo } from "./cli/run.js";
export { runDfcache } from "./dfcache/run.js";
