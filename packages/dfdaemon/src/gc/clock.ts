/** Time as the collector sees it; tests pass a fake one so TTL and interval logic run without waiting. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { clear(): void };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    // The collector must never keep a process alive on its own.
    timer.unref();
    return { clear: () => clearTimeout(timer) };
  },
};
