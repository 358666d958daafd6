import { backoffDelay, errorMessage, type Logger } from "@lacewing/common";
import { ShutdownError, type JobProcessor, type JobQueue } from "./job-queue.js";

const MAX_ATTEMPTS = 5;

/** Embedded mode: jobs run in this process, a few at a time. */
export class InProcessQueue implements JobQueue {
  readonly #concurrency: number;
  readonly #logger: Logger;
  readonly #waiting: string[] = [];
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  readonly #attempts = new Map<string, number>();
  #processor: JobProcessor | undefined;
  #closed = false;

  constructor(options: { concurrency: number; logger: Logger }) {
    this.#concurrency = options.concurrency;
    this.#logger = options.logger;
  }

  start(processor: JobProcessor): Promise<void> {
    this.#processor = processor;
    this.#pump();
    return Promise.resolve();
  }

  enqueue(jobId: string): Promise<void> {
    if (this.#closed || this.#waiting.includes(jobId) || this.#running.has(jobId)) return Promise.resolve();
    this.#waiting.push(jobId);
    this.#pump();
    return Promise.resolve();
  }

  cancel(jobId: string): void {
    const index = this.#waiting.indexOf(jobId);
    if (index >= 0) this.#waiting.splice(index, 1);
    this.#running.get(jobId)?.controller.abort(new Error("job cancelled"));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#waiting.length = 0;
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    const running = [...this.#running.values()];
    for (const { controller } of running) controller.abort(new ShutdownError());
    await Promise.all(running.map((r) => r.done));
  }

  #pump(): void {
    const processor = this.#processor;
    if (processor === undefined) return;
    while (!this.#closed && this.#running.size < this.#concurrency && this.#waiting.length > 0) {
      const jobId = this.#waiting.shift() as string;
      const controller = new AbortController();
      const done = this.#run(processor, jobId, controller.signal).finally(() => {
        this.#running.delete(jobId);
        this.#pump();
      });
      this.#running.set(jobId, { controller, done });
    }
  }

  async #run(processor: JobProcessor, jobId: string, signal: AbortSignal): Promise<void> {
    try {
      await processor(jobId, signal);
      this.#attempts.delete(jobId);
    } catch (err) {
      if (this.#closed) return; // left "running" in the database; re-queued at the next start
      const attempt = (this.#attempts.get(jobId) ?? 0) + 1;
      this.#attempts.set(jobId, attempt);
      this.#logger.warn({ jobId, attempt, err: errorMessage(err) }, "job processing failed");
      if (attempt >= MAX_ATTEMPTS) return;
      const timer = setTimeout(() => {
        this.#retryTimers.delete(timer);
        void this.enqueue(jobId);
      }, backoffDelay(attempt));
      timer.unref();
      this.#retryTimers.add(timer);
    }
  }
}
