/** Runs `refresh` now and every `intervalMs` after it settles, until `signal` aborts; a failing refresh is retried, not fatal. */
export async function poll(signal: AbortSignal, intervalMs: number, refresh: () => Promise<boolean | void>, onError: (err: unknown) => void): Promise<void> {
  while (!signal.aborted) {
    try {
      // A refresh that answers false is done (a finished job): polling stops.
      if ((await refresh()) === false) return;
    } catch (err) {
      if (signal.aborted) return;
      onError(err);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, intervalMs);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
