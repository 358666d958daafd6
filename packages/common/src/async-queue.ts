/**
 * An unbounded async queue: producers push, one consumer iterates. Used to
 * feed a gRPC request stream from events.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void) | undefined;
  #failWaiting: ((err: unknown) => void) | undefined;
  #ended = false;
  #error: unknown = undefined;

  push(item: T): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      this.#failWaiting = undefined;
      waiting({ value: item, done: false });
    } else {
      this.#items.push(item);
    }
  }

  /** No more items: the consumer finishes after draining. */
  end(): void {
    this.#ended = true;
    this.#release();
  }

  /** The consumer throws `err` after draining. */
  fail(err: unknown): void {
    this.#error = err;
    this.#ended = true;
    this.#release();
  }

  get ended(): boolean {
    return this.#ended;
  }

  #release(): void {
    if (this.#items.length > 0) return;
    const waiting = this.#waiting;
    const failWaiting = this.#failWaiting;
    this.#waiting = undefined;
    this.#failWaiting = undefined;
    if (this.#error !== undefined) failWaiting?.(this.#error);
    else waiting?.({ value: undefined, done: true });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#ended) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      const next = await new Promise<IteratorResult<T>>((resolve, reject) => {
        this.#waiting = resolve;
        this.#failWaiting = reject;
      });
      if (next.done) return;
      yield next.value;
    }
  }
}
