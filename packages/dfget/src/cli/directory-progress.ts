import { formatBytes } from "@lacewing/common";
import type { DirectoryProgress, DirectoryResult } from "../directory/download-directory.js";
import { createRedrawnLine, etaSeconds, formatBar, formatElapsed, formatEta, formatRate, type ProgressStream } from "./progress.js";

export interface DirectoryProgressOptions {
  stream: ProgressStream;
  now?: () => number;
  /** Smallest gap between two redraws. Default 100 ms; the last file always redraws. */
  minRedrawMs?: number;
  rateWindowMs?: number;
}

export interface DirectoryProgressRenderer {
  update(progress: DirectoryProgress): void;
  clear(): void;
}

/** One line for the whole directory, redrawn in place: files done/total, bytes, rate, ETA; the last file always redraws. */
export function createDirectoryProgressRenderer(options: DirectoryProgressOptions): DirectoryProgressRenderer {
  const line = createRedrawnLine(options);
  return {
    update: (progress) =>
      line.update(progress.completedBytes, progress.filesDone === progress.filesTotal, (bytesPerSecond) =>
        formatDirectoryProgressLine(progress, bytesPerSecond),
      ),
    clear: () => line.clear(),
  };
}

/** `[#########---------------]  37%  3/20 files  1.5 GiB / 4.0 GiB  85.0 MiB/s  ETA 0:31` */
export function formatDirectoryProgressLine(progress: DirectoryProgress, bytesPerSecond: number | undefined): string {
  const fraction =
    progress.totalBytes <= 0
      ? progress.filesTotal === 0
        ? 1
        : progress.filesDone / progress.filesTotal
      : Math.min(1, progress.completedBytes / progress.totalBytes);
  const rate = bytesPerSecond === undefined ? "-- B/s" : formatRate(bytesPerSecond);
  const eta = formatEta(etaSeconds(progress.completedBytes, progress.totalBytes, bytesPerSecond));
  return `${formatBar(fraction)}  ${progress.filesDone}/${progress.filesTotal} files  ${formatBytes(progress.completedBytes)} / ${formatBytes(progress.totalBytes)}  ${rate}  ETA ${eta}`;
}

/** The summary line on a terminal: `saved 20 files in /data/m: 18 downloaded, 4.0 GiB in 1m02s, 66.1 MiB/s (origin 0 B, peers 4.0 GiB, cache 0 B); 2 unchanged` */
export function formatDirectorySummary(outputDir: string, result: DirectoryResult): string {
  const downloaded = result.files.filter((file) => file.status === "downloaded");
  const unchanged = result.files.length - downloaded.length;
  const bytes = downloaded.reduce((sum, file) => sum + file.bytes, 0);
  const traffic = { origin: 0, peers: 0, cache: 0 };
  for (const file of downloaded) {
    traffic.origin += file.traffic.origin;
    traffic.peers += file.traffic.peers;
    traffic.cache += file.traffic.cache;
  }
  const rate = result.elapsedMs > 0 ? `, ${formatRate((bytes * 1000) / result.elapsedMs)}` : "";
  return (
    `saved ${result.files.length} files in ${outputDir}: ${downloaded.length} downloaded, ${formatBytes(bytes)} in ${formatElapsed(result.elapsedMs)}${rate} ` +
    `(origin ${formatBytes(traffic.origin)}, peers ${formatBytes(traffic.peers)}, cache ${formatBytes(traffic.cache)}); ${unchanged} unchanged`
  );
}
