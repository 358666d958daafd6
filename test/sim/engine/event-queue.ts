/**
 * The discrete-event engine: a clock in milliseconds and a queue of
 * callbacks ordered by time, then by the order they were scheduled, so
 * two events at the same instant run in a fixed order and a run is
 * reproducible.
 *
 * ```ts
 * const events = new EventQueue();
 * events.at(5, () => console.log(events.now)); // 5
 * events.runUntilIdle();
 * ```
 */
export type EventHandler = () => void;

export class EventQueue {
  #now = 0;
  #seq = 0;
  #processed = 0;
  /** A binary heap over three parallel arrays; cheaper than one object per event. */
  #times: number[] = [];
  #seqs: number[] = [];
  #handlers: EventHandler[] = [];

  /** Simulated milliseconds since the start. */
  get now(): number {
    return this.#now;
  }

  /** Events waiting to run. */
  get size(): number {
    return this.#times.length;
  }

  /** Events run so far. */
  get processed(): number {
    return this.#processed;
  }

  /** Runs `handler` at time `at`; an instant in the past runs now, never earlier. */
  at(at: number, handler: EventHandler): void {
    if (!Number.isFinite(at)) throw new RangeError(`event time must be finite, got ${at}`);
    this.#push(Math.max(at, this.#now), this.#seq++, handler);
  }

  /** Runs `handler` `delay` milliseconds from now. */
  after(delay: number, handler: EventHandler): void {
    this.at(this.#now + Math.max(0, delay), handler);
  }

  /** Time of the next event, or undefined when none is queued. */
  peekTime(): number | undefined {
    return this.#times[0];
  }

  /** Runs the next event; false when none is left or it is later than `until`. */
  step(until = Number.POSITIVE_INFINITY): boolean {
    const time = this.#times[0];
    if (time === undefined || time > until) return false;
    const handler = this.#pop();
    this.#now = time;
    this.#processed++;
    handler();
    return true;
  }

  /** Runs events until none is left or the next is later than `until`. */
  runUntilIdle(until = Number.POSITIVE_INFINITY): void {
    while (this.step(until));
  }

  #push(time: number, seq: number, handler: EventHandler): void {
    const times = this.#times;
    const seqs = this.#seqs;
    const handlers = this.#handlers;
    let i = times.length;
    times.push(time);
    seqs.push(seq);
    handlers.push(handler);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(time, seq, times[parent]!, seqs[parent]!)) break;
      times[i] = times[parent]!;
      seqs[i] = seqs[parent]!;
      handlers[i] = handlers[parent]!;
      i = parent;
    }
    times[i] = time;
    seqs[i] = seq;
    handlers[i] = handler;
  }

  #pop(): EventHandler {
    const times = this.#times;
    const seqs = this.#seqs;
    const handlers = this.#handlers;
    const top = handlers[0]!;
    const lastTime = times.pop()!;
    const lastSeq = seqs.pop()!;
    const lastHandler = handlers.pop()!;
    const size = times.length;
    if (size === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && before(times[right]!, seqs[right]!, times[left]!, seqs[left]!) ? right : left;
      if (!before(times[child]!, seqs[child]!, lastTime, lastSeq)) break;
      times[i] = times[child]!;
      seqs[i] = seqs[child]!;
      handlers[i] = handlers[child]!;
      i = child;
    }
    times[i] = lastTime;
    seqs[i] = lastSeq;
    handlers[i] = lastHandler;
    return top;
  }
}

function before(timeA: number, seqA: number, timeB: number, seqB: number): boolean {
  return timeA < timeB || (timeA === timeB && seqA < seqB);
}
