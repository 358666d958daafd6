import { formatBytes } from "@lacewing/common";
import type { DownloadResult } from "../download.js";

/** The part of a tty.WriteStream the renderer uses; tests pass a fake. */
export interface ProgressStream {
  write(chunk: string): unknown;
  readonly columns?: number | undefined;
}

export interface ProgressRendererOptions {
  stream: ProgressStream;
  /** Milliseconds clock; injectable so tests control time. */
  now?: () => number;
  /** Smallest gap between two redraws. Default 100 ms (10 redraws a second). */
  minRedrawMs?: number;
  /** How far back the rate looks. Default 5 s: smooth, yet follows a change of source. */
  rateWindowMs?: number;
}

export interface ProgressRenderer {
  /** Records progress; redraws unless the last redraw was too recent. `total` is -1 while unknown. */
  update(completedBytes: number, totalBytes: number): void;
  /** Erases the bar so the next line starts clean. */
  clear(): void;
}

const BAR_WIDTH = 24;
const CLEAR_LINE = "\r\x1b[K";

/** A single-line progress bar redrawn in place with `\r`. */
export function createProgressRenderer(options: ProgressRendererOptions): ProgressRenderer {
  const line = createRedrawnLine(options);
  return {
    update(completedBytes, totalBytes) {
      line.update(completedBytes, false, (bytesPerSecond) =>
        formatProgressLine({ completedBytes, totalBytes, bytesPerSecond, etaSeconds: etaSeconds(completedBytes, totalBytes, bytesPerSecond) }),
      );
    },
    clear: () => line.clear(),
  };
}

/**
 * The line both bars draw on: the rate over the bytes recorded, a redraw at
 * most every `minRedrawMs` (unless `force`), the line cut to the terminal's
 * width, and erased by clear().
 */
export function createRedrawnLine(options: ProgressRendererOptions): {
  update(completedBytes: number, force: boolean, format: (bytesPerSecond: number | undefined) => string): void;
  clear(): void;
} {
  const now = options.now ?? Date.now;
  const minRedrawMs = options.minRedrawMs ?? 100;
  const rate = createRateMeter(options.rateWindowMs ?? 5_000);
  let lastDrawAt = -Infinity;
  let drawn = false;
  return {
    update(completedBytes, force, format) {
      const at = now();
      rate.record(at, completedBytes);
      if (at - lastDrawAt < minRedrawMs && !force) return;
      lastDrawAt = at;
      const line = format(rate.bytesPerSecond());
      const width = options.stream.columns;
      options.stream.write(CLEAR_LINE + (width !== undefined && width > 1 ? line.slice(0, width - 1) : line));
      drawn = true;
    },
    clear() {
      if (drawn) options.stream.write(CLEAR_LINE);
      drawn = false;
    },
  };
}

/** `[#########---------------]  37%` for a fraction from 0 to 1. */
export function formatBar(fraction: number): string {
  const filled = Math.floor(fraction * BAR_WIDTH);
  return `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${`${Math.floor(fraction * 100)}%`.padStart(4)}`;
}

/** Rate over a sliding window of (time, bytes) samples. */
export function createRateMeter(windowMs: number): { record(at: number, bytes: number): void; bytesPerSecond(): number | undefined } {
  const samples: Array<{ at: number; bytes: number }> = [];
  return {
    record(at, bytes) {
      samples.push({ at, bytes });
      // Keep one sample older than the window so the span covers all of it.
      while (samples.length > 2 && (samples[1]?.at ?? at) <= at - windowMs) samples.shift();
    },
    bytesPerSecond() {
      const first = samples[0];
      const last = samples[samples.length - 1];
      if (first === undefined || last === undefined || last.at <= first.at) return undefined;
      return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
    },
  };
}

/** Seconds left at the current rate; undefined when the total or a usable rate is unknown. */
export function etaSeconds(completedBytes: number, totalBytes: number, bytesPerSecond: number | undefined): number | undefined {
  if (totalBytes < 0 || bytesPerSecond === undefined || bytesPerSecond <= 0) return undefined;
  return Math.max(0, totalBytes - completedBytes) / bytesPerSecond;
}

export interface ProgressLine {
  completedBytes: number;
  /** -1 while unknown. */
  totalBytes: number;
  bytesPerSecond: number | undefined;
  etaSeconds: number | undefined;
}

/** `[#########---------------]  37%  37.0 MiB / 100.0 MiB  12.5 MiB/s  ETA 0:05` */
export function formatProgressLine(line: ProgressLine): string {
  const rate = line.bytesPerSecond === undefined ? "-- B/s" : formatRate(line.bytesPerSecond);
  if (line.totalBytes < 0) return `${formatBytes(line.completedBytes)}  ${rate}`;
  const fraction = line.totalBytes === 0 ? 1 : Math.min(1, line.completedBytes / line.totalBytes);
  return `${formatBar(fraction)}  ${formatBytes(line.completedBytes)} / ${formatBytes(line.totalBytes)}  ${rate}  ETA ${formatEta(line.etaSeconds)}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `m:ss`, or `h:mm:ss` from an hour; `--:--` when unknown. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "--:--";
  const total = Math.ceil(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** `850ms`, `2.3s`, `4m05s`. */
export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

/** The one line printed on a terminal after a successful download. */
export function formatSummary(result: DownloadResult): string {
  const size = result.contentLength >= 0 ? result.contentLength : result.traffic.origin + result.traffic.peers + result.traffic.cache;
  const rate = result.elapsedMs > 0 ? `, ${formatRate((size * 1000) / result.elapsedMs)}` : "";
  const { origin, peers, cache } = result.traffic;
  return (
    `saved ${result.output}: ${formatBytes(size)} in ${formatElapsed(result.elapsedMs)}${rate} ` +
    `(origin ${formatBytes(origin)}, peers ${formatBytes(peers)}, cache ${formatBytes(cache)})`
  );
}
