import { ErrorCode } from "@lacewing/common";
import { daemonError } from "../errors.js";

/** Smallest buffer handed out: short pieces share one size class. */
const MIN_CLASS = 64 * 1024;

/** A leased buffer of exactly the length asked for; give it back with `release` once nothing reads or writes it. */
export interface PieceBuffer {
  readonly bytes: Buffer;
  release(): void;
}

interface Waiter {
  size: number;
  resolve: (buffer: Buffer) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * The memory a daemon may hold in piece bytes, whatever the number of
 * downloads or uploads: buffers are leased up to a byte budget and reused
 * (a fresh 4 MiB buffer costs a thousand page faults; a reused one none).
 * Past the budget a caller waits, in order, until a lease comes back, so
 * twenty concurrent downloads share the budget instead of multiplying it.
 * One lease is always granted even when it alone exceeds the budget, so a
 * 64 MiB piece is never stuck behind a 32 MiB budget.
 */
export class PieceBuffers {
  readonly #budget: number;
  /** Free buffers by size class. */
  readonly #free = new Map<number, Buffer[]>();
  /** Bytes of every buffer this pool holds, free or leased. */
  #held = 0;
  #leased = 0;
  readonly #waiters: Waiter[] = [];

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
  }

  /** Bytes currently leased out. */
  get leasedBytes(): number {
    return this.#leased;
  }

  /** Bytes held, free or leased: what the pool adds to the process's memory. */
  get heldBytes(): number {
    return this.#held;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** A buffer of `length` bytes, now or once the budget allows; rejects if `signal` aborts first. */
  acquire(length: number, signal?: AbortSignal): Promise<PieceBuffer> {
    const size = classOf(length);
    if (signal?.aborted === true) return Promise.reject(cancelled());
    const now = this.#waiters.length === 0 ? this.#take(size) : undefined;
    if (now !== undefined) return Promise.resolve(this.#lease(now, size, length));
    return new Promise<Buffer>((resolve, reject) => {
      const waiter: Waiter = {
        size,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) this.#waiters.splice(at, 1);
          reject(cancelled());
          this.#wake();
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    }).then((buffer) => this.#lease(buffer, size, length));
  }

  #lease(buffer: Buffer, size: number, length: number): PieceBuffer {
    let released = false;
    return {
      bytes: buffer.subarray(0, length),
      release: () => {
        if (released) return;
        released = true;
        this.#leased -= size;
        let free = this.#free.get(size);
        if (free === undefined) this.#free.set(size, (free = []));
        free.push(buffer);
        this.#wake();
      },
    };
  }

  /** A buffer of class `size` if the budget allows one now. */
  #take(size: number): Buffer | undefined {
    const reused = this.#free.get(size)?.pop();
    if (reused !== undefined) {
      this.#leased += size;
      return reused;
    }
    // Free buffers of other sizes give their room back before anyone waits.
    while (this.#held + size > this.#budget && this.#dropOneFree(size)) {
      /* dropping */
    }
    if (this.#held + size > this.#budget && this.#leased > 0) return undefined;
    this.#held += size;
    this.#leased += size;
    return Buffer.allocUnsafeSlow(size);
  }

  #dropOneFree(except: number): boolean {
    for (const [size, free] of this.#free) {
      if (size === except || free.length === 0) continue;
      free.pop();
      this.#held -= size;
      return true;
    }
    return false;
  }

  #wake(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0]!;
      const buffer = this.#take(waiter.size);
      if (buffer === undefined) return;
      this.#waiters.shift();
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.resolve(buffer);
    }
  }
}

function classOf(length: number): number {
  let size = MIN_CLASS;
  while (size < length) size *= 2;
  return size;
}

function cancelled(): Error {
  return daemonError(ErrorCode.cancelled, "cancelled", "cancelled while waiting for piece memory");
}
