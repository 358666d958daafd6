import type { Job } from "../jobs/job.js";

/** A job as JSON: dates as ISO strings. Args and task URLs come redacted from the store. */
export function jobJson(job: Job): Record<string, unknown> {
  return {
    id: job.id,
    type: job.type,
    state: job.state,
    args: job.args,
    progress: job.progress,
    tasks: job.tasks,
    error: job.error,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}
