import { Queue, Worker, type Job as BullJob } from "bullmq";
import { Redis } from "ioredis";
import { errorMessage, type Logger } from "@lacewing/common";
import { ShutdownError, type JobProcessor, type JobQueue } from "./job-queue.js";

export const QUEUE_NAME = "lacewing-manager-jobs";

export interface BullmqQueueOptions {
  redisUrl: string;
  /** Key prefix; tests use one per run. */
  prefix: string;
  concurrency: number;
  logger: Logger;
  /**
   * How long a worker's lock on a job lasts without renewal. A worker that
   * dies loses its lock after this; the stalled-job check then hands the job
   * to another worker.
   */
  lockDurationMs?: number;
}

interface Payload {
  jobId: string;
}

/**
 * Production mode: jobs wait in Redis, any manager replica runs them. The
 * BullMQ job id is the manager's job id, so queuing the same job twice (for
 * instance when re-queuing unfinished jobs at start-up) is a no-op.
 */
export class BullmqQueue implements JobQueue {
  readonly #options: BullmqQueueOptions;
  readonly #connection: Redis;
  readonly #queue: Queue<Payload>;
  readonly #running = new Map<string, AbortController>();
  #worker: Worker<Payload> | undefined;
  #workerConnection: Redis | undefined;

  constructor(options: BullmqQueueOptions) {
    this.#options = options;
    this.#connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
    this.#connection.on("error", (err) => options.logger.warn({ err: errorMessage(err) }, "redis connection error"));
    this.#queue = new Queue<Payload>(QUEUE_NAME, { connection: this.#connection, prefix: options.prefix });
  }

  async start(processor: JobProcessor): Promise<void> {
    this.#workerConnection = new Redis(this.#options.redisUrl, { maxRetriesPerRequest: null });
    this.#workerConnection.on("error", (err) => this.#options.logger.warn({ err: errorMessage(err) }, "redis connection error"));
    const lockDuration = this.#options.lockDurationMs ?? 30_000;
    this.#worker = new Worker<Payload>(
      QUEUE_NAME,
      async (job: BullJob<Payload>) => {
        const controller = new AbortController();
        this.#running.set(job.data.jobId, controller);
        try {
          await processor(job.data.jobId, controller.signal);
        } finally {
          this.#running.delete(job.data.jobId);
        }
      },
      {
        connection: this.#workerConnection,
        prefix: this.#options.prefix,
        concurrency: this.#options.concurrency,
        lockDuration,
        stalledInterval: Math.max(1_000, Math.floor(lockDuration / 2)),
        maxStalledCount: 5,
      },
    );
    this.#worker.on("failed", (job, err) => {
      if (!(err instanceof ShutdownError)) this.#options.logger.warn({ jobId: job?.data.jobId, err: errorMessage(err) }, "job processing failed");
    });
    this.#worker.on("error", (err) => this.#options.logger.warn({ err: errorMessage(err) }, "queue worker error"));
    await this.#worker.waitUntilReady();
  }

  async enqueue(jobId: string): Promise<void> {
    await this.#queue.add(
      "preheat",
      { jobId },
      {
        jobId,
        // A failed attempt here means the manager could not run the job (shutdown,
        // database down), not that the preheat failed: that is recorded as job state.
        attempts: 20,
        backoff: { type: "exponential", delay: 500 },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  cancel(jobId: string): void {
    this.#running.get(jobId)?.abort(new Error("job cancelled"));
  }

  async close(): Promise<void> {
    for (const controller of this.#running.values()) controller.abort(new ShutdownError());
    // Running jobs end at once (aborted) and go back to the queue for another attempt.
    await this.#worker?.close();
    await this.#queue.close();
    await Promise.all([this.#connection.quit().catch(() => undefined), this.#workerConnection?.quit().catch(() => undefined)]);
  }
}
