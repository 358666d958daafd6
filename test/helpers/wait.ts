import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `condition` until it holds, for a state no process announces (a
 * counter reaching a value, a scheduler forgetting a peer); fails naming
 * `what` once `timeoutMs` has passed. The interval only paces the polling:
 * nothing is asserted because time went by.
 */
export async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, { timeoutMs = 30_000, intervalMs = 50 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(intervalMs);
  }
}
