import { MAX_PIECE_COUNT } from "@lacewing/common";

/** Bits per word of the bitmap. */
const WORD = 32;

/**
 * The piece numbers a peer holds, as a bitmap: a peer of a 100-piece task
 * costs 16 bytes of words, not a hash set of 100 entries (about 2 KiB), and
 * "what can this parent give that child" is a few word operations instead
 * of a lookup per piece. A peer that holds the whole task is kept as a
 * count, not as bits: a finished parent of a task with a hundred thousand
 * pieces costs a few bytes, not 16 KiB.
 */
export class PieceSet implements Iterable<number> {
  /** Bit n of word n >>> 5 is piece n; grown (doubling) to the highest piece added. */
  #words: Uint32Array = EMPTY;
  #count = 0;
  /** When above 0: the peer holds pieces 0 … all-1. */
  #all = 0;

  constructor(numbers: Iterable<number> = []) {
    for (const number of numbers) this.add(number);
  }

  add(number: number): void {
    // Callers validate piece numbers first; this keeps a missed check from sizing the bitmap.
    if (!Number.isInteger(number) || number < 0 || number >= MAX_PIECE_COUNT) throw new RangeError(`piece ${number} is out of range`);
    if (this.#all > 0) return;
    const word = number >>> 5;
    if (word >= this.#words.length) this.#grow(word + 1);
    const bit = 1 << (number & 31);
    if ((this.#words[word]! & bit) !== 0) return;
    this.#words[word]! |= bit;
    this.#count++;
  }

  /** The peer holds every one of `total` pieces. */
  fill(total: number): void {
    this.#all = total;
    this.#words = EMPTY;
    this.#count = 0;
  }

  delete(number: number): void {
    if (this.#all > 0) {
      const total = this.#all;
      this.#all = 0;
      for (let n = 0; n < total; n++) if (n !== number) this.add(n);
      return;
    }
    if (!this.has(number)) return;
    this.#words[number >>> 5]! &= ~(1 << (number & 31));
    this.#count--;
  }

  has(number: number): boolean {
    if (!Number.isInteger(number) || number < 0) return false;
    if (this.#all > 0) return number < this.#all;
    const word = number >>> 5;
    return word < this.#words.length && (this.#words[word]! & (1 << (number & 31))) !== 0;
  }

  get size(): number {
    return this.#all > 0 ? this.#all : this.#count;
  }

  get full(): boolean {
    return this.#all > 0;
  }

  /** The bitmap's words, for piecesToGive; empty for a full set. */
  get words(): Uint32Array {
    return this.#words;
  }

  *[Symbol.iterator](): Iterator<number> {
    if (this.#all > 0) {
      for (let n = 0; n < this.#all; n++) yield n;
      return;
    }
    for (let word = 0; word < this.#words.length; word++) {
      let bits = this.#words[word]!;
      while (bits !== 0) {
        const low = bits & -bits;
        yield word * WORD + (31 - Math.clz32(low));
        bits ^= low;
      }
    }
  }

  #grow(words: number): void {
    const grown = new Uint32Array(Math.max(words, this.#words.length * 2, 2));
    grown.set(this.#words);
    this.#words = grown;
  }
}

const EMPTY = new Uint32Array(0);

/** Set bits of a 32-bit word. */
function bitCount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Pieces `parent` holds that `child` lacks. */
export function piecesToGive(parent: PieceSet, child: PieceSet): number {
  // Every number in a child's set is below the task's piece count, so a full parent gives the rest.
  if (parent.full) return Math.max(0, parent.size - child.size);
  // And every number in a parent's set is below it too, so a full child takes nothing.
  if (child.full) return 0;
  const given = parent.words;
  const held = child.words;
  let count = 0;
  for (let word = 0; word < given.length; word++) {
    const bits = given[word]!;
    if (bits !== 0) count += bitCount(bits & ~(held[word] ?? 0));
  }
  return count;
}
