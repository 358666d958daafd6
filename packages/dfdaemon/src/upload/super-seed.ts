import type { StoredTask } from "../storage/stored-task.js";

/** A first send still running after this long is presumed stuck; the piece is served again. */
const STUCK_SEND_MS = 30_000;
/**
 * After a first send, the piece is refused for this many times as long as
 * that send took, when that is longer than the window: its receiver passes
 * it on at about the speed it got it, and a swarm of 16 needs 4 such hops.
 */
export const SEND_TIME_MULTIPLE = 4;

interface FirstSend {
  startedAt: number;
  /** Undefined while the first send is in flight. */
  doneAt: number | undefined;
}

/**
 * Super-seeding for seed peers: a seed's uplink is the scarcest link in a
 * cold start, so it sends each piece once and lets the children trade it.
 * While a piece's first send is in flight, and after it completed for
 * `windowMs` or SEND_TIME_MULTIPLE times the send's duration, whichever is
 * longer (time for the receiver to pass it on), a request for that piece is
 * refused ("elsewhere") and the child asks for another. A first send that
 * fails, or hangs, frees the piece again. A fixed window alone let 16 peers
 * at 50 Mbit/s come back to the seed for pieces still on their way to
 * them (docs/BENCHMARKS.md).
 */
export class SuperSeed {
  readonly #windowMs: number;
  readonly #sends = new WeakMap<StoredTask, Map<number, FirstSend>>();
  /** Tasks whose every piece went out once; that cannot become false again. */
  readonly #allSent = new WeakSet<StoredTask>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Whether to serve `piece` now; a first send is recorded and must be ended with `done`. */
  admit(task: StoredTask, piece: number, now = Date.now()): { ok: boolean; first: boolean } {
    let sends = this.#sends.get(task);
    if (sends === undefined) {
      sends = new Map();
      this.#sends.set(task, sends);
    }
    // Once every piece went out, the seed's uplink would idle: it serves like any parent.
    if (this.#allSent.has(task) || (task.finished && this.#everySent(sends, task))) {
      this.#allSent.add(task);
      return { ok: true, first: false };
    }
    const first = sends.get(piece);
    if (first === undefined || (first.doneAt === undefined && now - first.startedAt >= STUCK_SEND_MS)) {
      sends.set(piece, { startedAt: now, doneAt: undefined });
      return { ok: true, first: true };
    }
    if (first.doneAt === undefined) return { ok: false, first: false };
    const window = Math.max(this.#windowMs, SEND_TIME_MULTIPLE * (first.doneAt - first.startedAt));
    return { ok: now - first.doneAt >= window, first: false };
  }

  #everySent(sends: Map<number, FirstSend>, task: StoredTask): boolean {
    if (sends.size < task.totalPieces) return false;
    for (const send of sends.values()) if (send.doneAt === undefined) return false;
    return true;
  }

  /** Ends a first send: completed, the window starts; failed, the piece is free for the next request. */
  done(task: StoredTask, piece: number, completed: boolean, now = Date.now()): void {
    const sends = this.#sends.get(task);
    const send = sends?.get(piece);
    if (sends === undefined || send === undefined || send.doneAt !== undefined) return;
    if (completed) send.doneAt = now;
    else sends.delete(piece);
  }
}
