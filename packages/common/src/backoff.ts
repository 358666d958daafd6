import { setTimeout as sleep } from "node:timers/promises";

export interface BackoffOptions {
  /** First delay in milliseconds. */
  initialMs?: number;
  /** Largest delay in milliseconds. */
  maxMs?: number;
  /** Growth per attempt. */
  factor?: number;
}

/** Delay before retry `attempt` (0-based): exponential with full jitter. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? 200;
  const max = options.maxMs ?? 10_000;
  const ceiling = Math.min(max, initial * (options.factor ?? 2) ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export interface RetryOptions extends BackoffOptions {
  /** Total tries, the first included. */
  attempts: number;
  signal?: AbortSignal;
  /** Whether a failure is worth another try; default: always. */
  retryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Runs `fn` until it succeeds, the attempts run out, or the error is not retryable. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt + 1 >= options.attempts || options.signal?.aborted || !(options.retryable?.(err) ?? true)) throw err;
      const delay = backoffDelay(attempt, options);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined);
    }
  }
}
