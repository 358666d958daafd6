import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode } from "@lacewing/common";
import type { RemoteFile } from "@lacewing/sources";
import type { DownloadResult } from "../download.js";
import { describeFailure, ExitCode, type Failure, type FailureContext } from "../cli/exit-codes.js";
import { isUnchanged, writtenFileOf, type DirStateWriter } from "./dir-state.js";
import { prepareOutputPath } from "./output-dirs.js";

/** Downloads one listed file to `output`: in dfget, the single-file path through the daemon; in tests, a fake. */
export type DownloadFile = (
  file: RemoteFile,
  output: string,
  hooks: { signal: AbortSignal; onProgress: (completedBytes: number) => void },
) => Promise<DownloadResult>;

export type FileStatus = "downloaded" | "unchanged" | "failed" | "not-started";

/** One file's line in the result (and in `--json`). */
export interface FileOutcome {
  key: string;
  url: string;
  output: string;
  status: FileStatus;
  /** The file's size on disk (downloaded or unchanged), else 0. */
  bytes: number;
  /** Bytes by where they came from; all 0 for an unchanged file. */
  traffic: { origin: number; peers: number; cache: number };
  error?: { code: string; message: string };
}

export interface DirectoryProgress {
  filesDone: number;
  filesTotal: number;
  /** Bytes of the files this run downloads (unchanged files not counted). */
  completedBytes: number;
  totalBytes: number;
}

export interface DownloadDirectoryOptions {
  /** Absolute path of the output directory; it exists. */
  root: string;
  /** Checked, filtered, in listing order. */
  files: readonly RemoteFile[];
  /** Files downloaded at once. */
  maxConcurrent: number;
  state: DirStateWriter;
  downloadFile: DownloadFile;
  signal?: AbortSignal;
  onProgress?: (progress: DirectoryProgress) => void;
  /** For the messages of failures (the socket a "no daemon" message names). */
  failureContext: FailureContext;
  /** Milliseconds clock for the elapsed time. */
  now?: () => number;
}

export interface DirectoryResult {
  files: FileOutcome[];
  /** Why the run failed: the first failure that stopped it, else the first failed file in listing order. */
  failure: FileFailure | undefined;
  elapsedMs: number;
}

/** A failure of one file; its message starts with the key. */
export type FileFailure = Failure & { key: string };

/** A failure that every later file would hit too (no daemon, Ctrl-C, bad settings, full disk): the run stops starting files. */
function stopsTheRun(failure: Failure): boolean {
  return (
    failure.exitCode === ExitCode.noDaemon ||
    failure.exitCode === ExitCode.interrupted ||
    failure.exitCode === ExitCode.usage ||
    failure.code === ErrorCode.diskFull
  );
}

/**
 * Downloads every file of `files` that is missing or changed below `root`,
 * at most `maxConcurrent` at once, each as its own download. A file whose
 * listed version and on-disk size and mtime match the state file is left
 * alone. A failed file does not stop the others: they finish and stay (and
 * are recorded), and the run reports the failure. A failure every other
 * file would share (see stopsTheRun) cancels the downloads in flight and
 * starts no more; files never started are reported as "not-started".
 */
export async function downloadDirectory(options: DownloadDirectoryOptions): Promise<DirectoryResult> {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const written = options.state.state.files;
  const outcomes: FileOutcome[] = options.files.map((file) => ({
    key: file.key,
    url: file.url,
    output: join(options.root, file.key),
    status: "not-started",
    bytes: 0,
    traffic: { origin: 0, peers: 0, cache: 0 },
  }));

  const todo: number[] = [];
  for (const [index, file] of options.files.entries()) {
    const outcome = outcomes[index]!;
    if (await isUnchanged(outcome.output, file.version, written.get(file.key))) {
      outcome.status = "unchanged";
      outcome.bytes = written.get(file.key)?.size ?? 0;
    } else {
      todo.push(index);
    }
  }

  const progress: DirectoryProgress = {
    filesDone: 0,
    filesTotal: todo.length,
    completedBytes: 0,
    totalBytes: todo.reduce((sum, index) => sum + Math.max(0, options.files[index]!.size), 0),
  };
  const report = (): void => options.onProgress?.({ ...progress });
  report();

  const stop = new AbortController();
  const stopFromCaller = (): void => stop.abort();
  options.signal?.addEventListener("abort", stopFromCaller, { once: true });
  if (options.signal?.aborted === true) stop.abort();
  let stoppedBy: FileFailure | undefined;
  const failures: Array<FileFailure | undefined> = [];

  const runOne = async (index: number): Promise<void> => {
    const file = options.files[index]!;
    const outcome = outcomes[index]!;
    let done = 0;
    try {
      const output = await prepareOutputPath(options.root, file.key);
      const result = await options.downloadFile(file, output, {
        signal: stop.signal,
        onProgress: (completedBytes) => {
          progress.completedBytes += completedBytes - done;
          done = completedBytes;
          report();
        },
      });
      const stats = await lstat(output);
      outcome.status = "downloaded";
      outcome.bytes = stats.size;
      outcome.traffic = { ...result.traffic };
      progress.completedBytes += Math.max(0, file.size) - done;
      done = Math.max(0, file.size);
      options.state.record(file.key, writtenFileOf(file.version, stats));
    } catch (err) {
      const described = describeFailure(err, options.failureContext);
      const failure: FileFailure = { ...described, message: `${file.key}: ${described.message}`, key: file.key };
      failures[index] = failure;
      outcome.status = "failed";
      outcome.error = { code: failure.code, message: failure.message };
      if (stopsTheRun(failure) && !stop.signal.aborted) {
        stoppedBy = failure;
        stop.abort();
      }
    } finally {
      progress.filesDone++;
      report();
    }
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (!stop.signal.aborted && next < todo.length) await runOne(todo[next++]!);
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.maxConcurrent, todo.length)) }, worker));
  } finally {
    options.signal?.removeEventListener("abort", stopFromCaller);
  }
  if (options.signal?.aborted === true && stoppedBy === undefined) {
    stoppedBy = { exitCode: ExitCode.interrupted, code: ErrorCode.cancelled, message: "download cancelled", key: "" };
  }

  const failure = stoppedBy ?? failures.find((f) => f !== undefined);
  return { files: outcomes, failure, elapsedMs: now() - startedAt };
}
