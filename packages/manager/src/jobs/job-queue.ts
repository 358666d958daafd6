/** Runs one job to the end; the signal aborts when this process shuts down or the job is cancelled here. */
export type JobProcessor = (jobId: string, signal: AbortSignal) => Promise<void>;

/**
 * Where jobs wait to run. BullMQ (Redis) in production, an in-process queue
 * in embedded mode; both hand job ids to the same processor. Job state lives
 * in Postgres, so a queue only carries ids.
 */
export interface JobQueue {
  start(processor: JobProcessor): Promise<void>;
  /** Queues a job id; queuing one that is already waiting or running is a no-op. */
  enqueue(jobId: string): Promise<void>;
  /** Aborts the job if it runs in this process (others notice through its state). */
  cancel(jobId: string): void;
  /** Stops taking jobs and aborts running ones, leaving them to be picked up again. */
  close(): Promise<void>;
}

/** Abort reason for jobs cut short by shutdown: they stay "running" and are retried. */
export class ShutdownError extends Error {
  constructor() {
    super("the manager is shutting down");
    this.name = "ShutdownError";
  }
}
