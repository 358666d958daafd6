import { Transform, type TransformCallback } from "node:stream";

/**
 * A token bucket shared by every upload of a daemon: at most `bytesPerSecond`
 * on average, with bursts up to a tenth of a second's worth. Callers that
 * overdraw wait until the debt is paid, so concurrent uploads share the rate.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at = Date.now();

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
    this.#burst = Math.max(64 * 1024, bytesPerSecond / 10);
    this.#tokens = this.#burst;
  }

  /** Milliseconds the caller must wait before sending `bytes`. */
  reserve(bytes: number): number {
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = now;
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#rate) * 1000;
  }

  /** A pass-through stream that paces what flows through it. */
  throttle(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) => {
        const wait = this.reserve(chunk.byteLength);
        if (wait === 0) callback(null, chunk);
        else setTimeout(() => callback(null, chunk), wait);
      },
    });
  }
}
