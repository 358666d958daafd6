import type { Clock } from "../gc/clock.js";

/** A clock that moves only when told to; due timers fire inside `advance`. */
export class FakeClock implements Clock {
  #now: number;
  #timers: Array<{ at: number; fn: () => void }> = [];

  constructor(now = Date.now()) {
    this.#now = now;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): { clear(): void } {
    const timer = { at: this.#now + ms, fn };
    this.#timers.push(timer);
    return { clear: () => void (this.#timers = this.#timers.filter((t) => t !== timer)) };
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }

  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = until;
  }
}
