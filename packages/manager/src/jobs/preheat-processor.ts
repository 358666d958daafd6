import type { DownloadSchema, MessageInitShape } from "@lacewing/api";
import { errorMessage, headerValue, isLacewingError, isS3Url, redactUrl, retry, taskIdOf, type Logger } from "@lacewing/common";
import type { JobStore } from "../db/job-store.js";
import type { ManagerMetrics } from "../metrics.js";
import { isHfUrl, resolveHfFile } from "@lacewing/sources";
import { resolveImage } from "../oci/image-resolver.js";
import type { SchedulerPool } from "../scheduler/scheduler-pool.js";
import { ShutdownError, type JobProcessor } from "./job-queue.js";
import type { PreheatArgs, TaskResult } from "./job.js";

export interface PreheatProcessorOptions {
  store: JobStore;
  schedulers: SchedulerPool;
  metrics: ManagerMetrics;
  logger: Logger;
  /** Tasks of one job triggered at once. */
  taskConcurrency: number;
  triggerTimeoutMs: number;
  /** Where hf:// preheats read HF_ENDPOINT and, when the job names no Authorization header, HF_TOKEN; the process's environment by default. */
  hubEnv?: NodeJS.ProcessEnv;
}

/** A task to trigger: its result row plus what the seed peers need to fetch it. */
interface PlannedTask {
  result: TaskResult;
  download: MessageInitShape<typeof DownloadSchema>;
  /** For registry blobs: the Authorization to send when the task is triggered (tokens expire). */
  authorization?: (signal: AbortSignal) => Promise<string | undefined>;
}

/**
 * Runs a preheat job: plans its tasks (an image's layers, or a file list),
 * triggers each through the scheduler that owns it, and records every task's
 * result, so one failed layer does not hide the others. A job cut short by
 * shutdown throws and stays "running"; it resumes elsewhere and skips the
 * tasks that already succeeded.
 */
export function createPreheatProcessor(options: PreheatProcessorOptions): JobProcessor {
  const { store, logger } = options;
  return async (jobId, signal) => {
    if (!(await store.markRunning(jobId))) return; // finished or cancelled while it waited
    // `job` is the redacted view, like everything stored; `args` are what the job runs with,
    // credentials included, and go nowhere but to the registry and into the downloads the schedulers trigger.
    const { job, args } = await store.getWithSecrets(jobId);
    const log = logger.child({ jobId });

    let planned: PlannedTask[];
    try {
      planned = await planTasks(args, signal, options.schedulers, options.hubEnv ?? process.env);
    } catch (err) {
      throwIfShutdown(signal);
      if (await cancelledMeanwhile(store, jobId)) return;
      if (!isLacewingError(err)) throw err;
      log.warn({ err: err.message, code: err.code }, "preheat could not resolve its tasks");
      if (await store.finish(jobId, "failed", [], err.message)) options.metrics.jobFinished("failed");
      return;
    }
    // A resumed job keeps the results of tasks that already succeeded.
    const previous = new Map(job.tasks.map((t) => [t.taskId, t]));
    const tasks = planned.map((p) => {
      const before = previous.get(p.result.taskId);
      return before?.state === "succeeded" ? before : p.result;
    });
    await store.saveTasks(jobId, tasks);
    log.info({ tasks: tasks.length, type: args.type }, "preheat planned");

    let stopped = false;
    let next = 0;
    const runOne = async (index: number): Promise<void> => {
      const task = tasks[index] as TaskResult;
      const plan = planned[index] as PlannedTask;
      if (task.state === "succeeded") return;
      tasks[index] = { ...task, state: "running", error: "", hosts: [] };
      await store.saveTasks(jobId, tasks);
      try {
        const authorization = await plan.authorization?.(signal);
        const download =
          authorization === undefined ? plan.download : { ...plan.download, requestHeaders: { ...plan.download.requestHeaders, Authorization: authorization } };
        // A scheduler restarting or briefly unreachable is worth a few more tries.
        const result = await retry(() => options.schedulers.trigger(task.taskId, download, args.scope, { signal, timeoutMs: options.triggerTimeoutMs }), {
          attempts: 3,
          initialMs: 500,
          signal,
          retryable: (err) => isLacewingError(err) && err.kind === "unavailable",
        });
        const failures = result.hosts.filter((h) => !h.success);
        const error =
          result.hosts.length === 0
            ? "no host was triggered"
            : failures.length > 0
              ? failures.map((h) => `${h.hostname || h.hostId}: ${h.description}`).join("; ")
              : "";
        tasks[index] = { ...task, state: error === "" ? "succeeded" : "failed", error, hosts: result.hosts };
        log.info({ taskId: task.taskId, digest: task.digest, state: tasks[index].state }, "preheat task done");
      } catch (err) {
        if (signal.aborted) {
          tasks[index] = { ...task, state: "pending" };
          return;
        }
        tasks[index] = { ...task, state: "failed", error: errorMessage(err), hosts: [] };
        log.warn({ taskId: task.taskId, digest: task.digest, err: errorMessage(err) }, "preheat task failed");
      }
      await store.saveTasks(jobId, tasks);
    };
    const worker = async (): Promise<void> => {
      while (!stopped && !signal.aborted && next < tasks.length) {
        const index = next++;
        // Cancellation from another replica shows up only in the database.
        if ((await store.state(jobId)) !== "running") {
          stopped = true;
          return;
        }
        await runOne(index);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.taskConcurrency, Math.max(tasks.length, 1)) }, worker));

    throwIfShutdown(signal);
    if (stopped || signal.aborted) return; // cancelled: the job row already says so
    const failed = tasks.filter((t) => t.state !== "succeeded").length;
    const state = failed === 0 ? "succeeded" : "failed";
    const error = failed === 0 ? "" : `${failed} of ${tasks.length} tasks failed`;
    if (await store.finish(jobId, state, tasks, error)) {
      options.metrics.jobFinished(state);
      log.info({ state, failed, total: tasks.length }, "preheat finished");
    }
  };
}

function throwIfShutdown(signal: AbortSignal): void {
  if (signal.aborted && signal.reason instanceof ShutdownError) throw signal.reason;
}

async function cancelledMeanwhile(store: JobStore, jobId: string): Promise<boolean> {
  return (await store.state(jobId)) === "cancelled";
}

async function planTasks(args: PreheatArgs, signal: AbortSignal, schedulers: SchedulerPool, hubEnv: NodeJS.ProcessEnv): Promise<PlannedTask[]> {
  const idInput = { tag: args.tag, application: args.application, filteredQueryParams: args.filteredQueryParams };
  if (args.type === "file") {
    // An explicit Authorization header wins over username/password.
    const authorization = headerValue(args.headers, "authorization");
    const headers = authorization !== undefined ? args.headers : { ...args.headers, ...basicAuthOf(args) };
    const tasks: PlannedTask[] = [];
    for (const url of args.urls) {
      if (isS3Url(url)) {
        tasks.push(await plannedS3Task(url, idInput, signal, schedulers));
        continue;
      }
      if (!isHfUrl(url)) {
        tasks.push(plannedTask(url, "", idInput, headers, schedulers));
        continue;
      }
      // The download dfget would hand its daemon: the commit the revision points at now, so the later dfget
      // of the same revision (or of the commit) lands on this task. The job's Authorization, else the manager's HF_TOKEN.
      const file = await resolveHfFile(url, { env: hubEnv, signal, ...(authorization === undefined ? {} : { authorization }) });
      tasks.push(plannedTask(file.url, file.digest, idInput, { ...file.headers, ...args.headers }, schedulers));
    }
    // A URL listed twice (or two URLs that differ only in filtered query parameters) is one task.
    return uniqueBy(tasks, (task) => task.result.taskId);
  }
  const manifestUrl = args.urls[0] as string;
  const image = await resolveImage({
    manifestUrl,
    platform: args.platform,
    credentials: { username: args.username, password: args.password, headers: args.headers },
    signal,
  });
  const headers = withoutAuthorization(args.headers);
  // The config blob first: a pull reads it before the layers. Blobs are
  // content-addressed, so a digest listed twice is one task.
  return uniqueBy([...(image.config === undefined ? [] : [image.config]), ...image.layers], (blob) => blob.digest).map((blob) => ({
    ...plannedTask(blob.url, blob.digest, idInput, headers, schedulers),
    authorization: (signal: AbortSignal) => image.freshAuthorization(signal),
  }));
}

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(key(item)) && seen.add(key(item)) !== undefined);
}

function plannedTask(
  url: string,
  digest: string,
  idInput: { tag: string; application: string; filteredQueryParams: string[]; sourceVersion?: string },
  headers: Record<string, string>,
  schedulers: SchedulerPool,
): PlannedTask {
  // The same id a later pull through the mirror or dfget computes; for a blob URL it follows the digest.
  const taskId = taskIdOf({ url, ...idInput });
  return {
    // The result is stored and shown, so it names the URL redacted; the download carries the real one to the seed peers.
    result: {
      taskId,
      url: redactUrl(url, { filteredQueryParams: idInput.filteredQueryParams }),
      digest,
      state: "pending",
      error: "",
      scheduler: schedulers.addresses.length > 0 ? schedulers.ownerOf(taskId) : "",
      hosts: [],
    },
    download: { url, digest, tag: idInput.tag, application: idInput.application, filteredQueryParams: idInput.filteredQueryParams, requestHeaders: headers },
  };
}

/**
 * An s3:// object: the manager pins its ETag (HeadObject with the manager's
 * own AWS_* access), so the task id is the one a later `dfget` of the same
 * object computes, and the access goes with the download to the seed peers
 * (over mTLS, like request headers; the stored result names only the URL).
 */
async function plannedS3Task(
  url: string,
  idInput: { tag: string; application: string; filteredQueryParams: string[] },
  signal: AbortSignal,
  schedulers: SchedulerPool,
): Promise<PlannedTask> {
  const { resolveS3Access, statS3Object } = await import("@lacewing/sources");
  const objectStorage = await resolveS3Access(process.env);
  const { etag } = await statS3Object(url, objectStorage, { signal });
  const { result } = plannedTask(url, "", { ...idInput, sourceVersion: etag }, {}, schedulers);
  const { tag, application, filteredQueryParams } = idInput;
  return { result, download: { url, tag, application, filteredQueryParams, objectStorage, sourceVersion: etag } };
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== "authorization"));
}

function basicAuthOf(args: PreheatArgs): Record<string, string> {
  if (args.username === "") return {};
  return { Authorization: `Basic ${Buffer.from(`${args.username}:${args.password}`).toString("base64")}` };
}
