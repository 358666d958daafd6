/**
 * The piece numbers a peer holds. A peer that holds the whole task is kept
 * as a count, not as one entry per piece: a finished parent of a task with
 * a hundred thousand pieces costs a few bytes, not megabytes.
 */
export class PieceSet implements Iterable<number> {
  readonly #some = new Set<number>();
  /** When above 0: the peer holds pieces 0 … all-1. */
  #all = 0;

  constructor(numbers: Iterable<number> = []) {
    for (const number of numbers) this.#some.add(number);
  }

  add(number: number): void {
    if (this.#all === 0) this.#some.add(number);
  }

  /** The peer holds every one of `total` pieces. */
  fill(total: number): void {
    this.#all = total;
    this.#some.clear();
  }

  delete(number: number): void {
    if (this.#all > 0) {
      for (let n = 0; n < this.#all; n++) if (n !== number) this.#some.add(n);
      this.#all = 0;
    } else this.#some.delete(number);
  }

  has(number: number): boolean {
    return this.#all > 0 ? Number.isInteger(number) && number >= 0 && number < this.#all : this.#some.has(number);
  }

  get size(): number {
    return this.#all > 0 ? this.#all : this.#some.size;
  }

  get full(): boolean {
    return this.#all > 0;
  }

  *[Symbol.iterator](): Iterator<number> {
    if (this.#all > 0) for (let n = 0; n < this.#all; n++) yield n;
    else yield* this.#some;
  }
}

/** Pieces `parent` holds that `child` lacks. */
export function piecesToGive(parent: PieceSet, child: PieceSet): number {
  // Every number in a child's set is below the task's piece count, so a full parent gives the rest.
  if (parent.full) return Math.max(0, parent.size - child.size);
  let count = 0;
  for (const piece of parent) if (!child.has(piece)) count++;
  return count;
}
