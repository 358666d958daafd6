import type { StoredTask } from "../storage/stored-task.js";

/** A first send still running after this long is presumed stuck; the piece is served again. */
const STUCK_SEND_MS = 30_000;

interface FirstSend {
  startedAt: number;
  /** Undefined while the first send is in flight. */
  doneAt: number | undefined;
}

/**
 * Super-seeding for seed peers: a seed's uplink is the scarcest link in a
 * cold start, so it sends each piece once and lets the children trade it.
 * While a piece's first send is in flight, and for `windowMs` after it
 * completed (time for the receiver to announce it), a request for that piece
 * is refused (503 with `x-lacewing-elsewhere`) and the child asks for
 * another. A first send that fails, or hangs, frees the piece again.
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
    if (this.#allSent.has(task) || (task.meta.finished && this.#everySent(sends, task))) {
      this.#allSent.add(task);
      return { ok: true, first: false };
    }
    const first = sends.get(piece);
    if (first === undefined || (first.doneAt === undefined && now - first.startedAt >= STUCK_SEND_MS)) {
      sends.set(piece, { startedAt: now, doneAt: undefined });
      return { ok: true, first: true };
    }
    return { ok: first.doneAt !== undefined && now - first.doneAt >= this.#windowMs, first: false };
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
