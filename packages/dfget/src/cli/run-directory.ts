import { mkdir } from "node:fs/promises";
import { ErrorCode, LacewingError, createLogger, isLacewingError, redactUrl, silentLogger } from "@lacewing/common";
import { download } from "../download.js";
import { DirStateWriter, readDirState } from "../directory/dir-state.js";
import { downloadDirectory, type DirectoryResult, type DownloadFile } from "../directory/download-directory.js";
import { createKeyFilter } from "../directory/glob.js";
import { DEFAULT_LISTERS, listerFor } from "../directory/listers.js";
import { listDirectory } from "../directory/plan.js";
import { createDirectoryProgressRenderer, formatDirectorySummary, type DirectoryProgressRenderer } from "./directory-progress.js";
import { describeFailure, ExitCode, type Failure } from "./exit-codes.js";
import { requestForListedFile } from "./listed-file.js";
import type { DfgetIo } from "./run.js";
import { resolveDirectoryRequest, resolveRequest, type CommandLine, type DirectoryRequest } from "./options.js";

/** The part of the process a directory run uses: dfget's, without its arguments. */
export type DirectoryIo = Omit<DfgetIo, "argv">;

/** What a directory run ended with; runDfget reports a thrown error, this reports a finished run. */
export interface DirectoryRunOutcome {
  exitCode: number;
  /** The one stderr line of a failed run, without the `dfget: ` prefix. */
  failure: Failure | undefined;
}

/**
 * `dfget -r URL -O DIR`: lists the directory, then downloads each file
 * through the single-file path (resolveRequest + download, so a file gets
 * exactly the request `dfget FILE_URL -O DIR/KEY` would send), several at
 * once, and prints one summary. Throws only before the first download (bad
 * input, a failed listing, an unsafe key); a run that started reports its
 * failures per file.
 */
export async function runDirectory(commandLine: CommandLine, io: DirectoryIo): Promise<DirectoryRunOutcome> {
  const request = await resolveDirectoryRequest(commandLine, { env: io.env, cwd: io.cwd });
  const list = listerFor(request.rootUrl, io.listers ?? DEFAULT_LISTERS);
  const logger = request.logLevel === "silent" ? silentLogger() : createLogger({ name: "dfget", level: request.logLevel, destination: io.stderr });
  logger.info({ url: redactUrl(request.rootUrl, { query: "all" }), output: request.outputDir, socket: request.socket }, "directory requested");
  const files = await listDirectory(list, request.rootUrl, {
    filter: createKeyFilter({ include: request.include, exclude: request.exclude }),
    // The lister reads path style from the environment, as the AWS tools do; the flag says the same.
    env: request.s3ForcePathStyle ? { ...io.env, AWS_S3_FORCE_PATH_STYLE: "true" } : io.env,
    ...(io.signal === undefined ? {} : { signal: io.signal }),
  }).catch((err: unknown) => {
    // A lister stopped by Ctrl-C may throw anything (an SDK's AbortError); the user only needs to hear it was cancelled.
    if (io.signal?.aborted === true && !isLacewingError(err)) throw new LacewingError(ErrorCode.cancelled, "cancelled", "listing cancelled", { cause: err });
    throw err;
  });
  logger.info({ files: files.length }, "directory listed");
  await mkdir(request.outputDir, { recursive: true });
  const state = new DirStateWriter(request.outputDir, await readDirState(request.outputDir));

  const downloadFile: DownloadFile = async (file, output, hooks) => {
    const fileRequest = await requestForListedFile(
      await resolveRequest({ ...commandLine, url: file.url, output, digest: undefined, recursive: false }, { env: io.env, cwd: io.cwd }),
      file,
      io.env,
    );
    logger.debug({ key: file.key, output }, "file requested");
    return download(fileRequest.download, {
      socket: fileRequest.socket,
      timeoutMs: fileRequest.timeoutMs,
      // Every file in flight waits for a restarted daemon and carries on, as a single dfget does.
      reconnectTimeoutMs: fileRequest.reconnectTimeoutMs,
      logger,
      signal: hooks.signal,
      onProgress: (event) => hooks.onProgress(event.completedBytes),
    });
  };

  const bar: DirectoryProgressRenderer | undefined =
    request.progress && !request.json && io.stderr.isTTY === true
      ? createDirectoryProgressRenderer({ stream: io.stderr, ...(io.now === undefined ? {} : { now: io.now }) })
      : undefined;
  let result: DirectoryResult;
  try {
    result = await downloadDirectory({
      root: request.outputDir,
      files,
      maxConcurrent: request.maxConcurrent,
      state,
      downloadFile,
      failureContext: { socket: request.socket },
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      ...(bar === undefined ? {} : { onProgress: (progress) => bar.update(progress) }),
      ...(io.now === undefined ? {} : { now: io.now }),
    });
  } finally {
    bar?.clear();
  }

  let failure: Failure | undefined = result.failure;
  if (failure !== undefined) {
    const failed = result.files.filter((file) => file.status === "failed").length;
    if (failed > 1) failure = { ...failure, message: `${failed} of ${result.files.length} files failed; first ${failure.message}` };
  }
  try {
    await state.flush();
  } catch (err) {
    // The files are in place; only the next run's skipping suffers. Still a failure: the user asked for a resumable directory.
    failure ??= describeFailure(err, { socket: request.socket });
  }

  if (request.json) io.stdout.write(`${JSON.stringify(directoryJsonOf(request, result, failure))}\n`);
  else if (failure === undefined && io.stderr.isTTY === true) io.stderr.write(`${formatDirectorySummary(request.outputDir, result)}\n`);
  return { exitCode: failure?.exitCode ?? ExitCode.ok, failure };
}

/** The `--json` document of a directory run: one entry per file, in listing order, and the totals. */
export function directoryJsonOf(request: DirectoryRequest, result: DirectoryResult, failure: Failure | undefined): object {
  const summary = {
    files: result.files.length,
    downloaded: 0,
    unchanged: 0,
    failed: 0,
    notStarted: 0,
    bytes: 0,
    traffic: { origin: 0, peers: 0, cache: 0 },
    elapsedMs: result.elapsedMs,
  };
  for (const file of result.files) {
    if (file.status === "downloaded") summary.downloaded++;
    else if (file.status === "unchanged") summary.unchanged++;
    else if (file.status === "failed") summary.failed++;
    else summary.notStarted++;
    if (file.status === "downloaded") {
      summary.bytes += file.bytes;
      summary.traffic.origin += file.traffic.origin;
      summary.traffic.peers += file.traffic.peers;
      summary.traffic.cache += file.traffic.cache;
    }
  }
  return {
    ok: failure === undefined,
    url: request.rootUrl,
    output: request.outputDir,
    files: result.files.map((file) => ({
      key: file.key,
      url: file.url,
      output: file.output,
      status: file.status,
      ok: file.status === "downloaded" || file.status === "unchanged",
      bytes: file.bytes,
      traffic: file.traffic,
      ...(file.error === undefined ? {} : { error: file.error }),
    })),
    summary,
    ...(failure === undefined ? {} : { error: { code: failure.code, message: failure.message } }),
  };
}
