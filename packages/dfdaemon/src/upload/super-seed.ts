import type { StoredTask } from "../storage/stored-task.js";

/**
 * Super-seeding for seed peers: a seed's uplink is the scarcest link in a
 * cold start, so it sends each piece once and lets the children trade it.
 * A request for a piece the seed already sent within `windowMs` is refused
 * (503 with `x-lacewing-elsewhere`), and the child asks for another piece;
 * after the window, or for a piece nobody got yet, the seed serves. The
 * window bounds the cost when the first receiver is slow or gone.
 */
export class SuperSeed {
  readonly #windowMs: number;
  readonly #firstSent = new WeakMap<StoredTask, Map<number, number>>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Whether to serve `piece` now; records the first send. */
  admit(task: StoredTask, piece: number, now = Date.now()): boolean {
    let sent = this.#firstSent.get(task);
    if (sent === undefined) {
      sent = new Map();
      this.#firstSent.set(task, sent);
    }
    const first = sent.get(piece);
    if (first === undefined) {
      sent.set(piece, now);
      return true;
    }
    return now - first >= this.#windowMs;
  }
}
