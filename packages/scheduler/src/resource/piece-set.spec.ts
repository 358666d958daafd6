import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PieceSet, piecesToGive } from "./piece-set.js";

/** The same questions answered by a plain Set, to compare with. */
function naiveToGive(parent: ReadonlySet<number>, child: ReadonlySet<number>): number {
  let count = 0;
  for (const piece of parent) if (!child.has(piece)) count++;
  return count;
}

describe("PieceSet", () => {
  it("holds what was added, once each, across word boundaries", () => {
    const set = new PieceSet([0, 31, 32, 33, 1000]);
    set.add(31);
    assert.equal(set.size, 5);
    for (const n of [0, 31, 32, 33, 1000]) assert.ok(set.has(n), `holds ${n}`);
    for (const n of [1, 30, 34, 999, 1001, 1_000_000, -1, 0.5]) assert.ok(!set.has(n), `does not hold ${n}`);
    assert.deepEqual([...set], [0, 31, 32, 33, 1000]);
  });

  it("refuses a piece number no task has, rather than growing the bitmap for it", () => {
    const set = new PieceSet();
    for (const bad of [-1, 0.5, 131_072, Number.NaN]) assert.throws(() => set.add(bad), RangeError, String(bad));
    assert.equal(set.size, 0);
    assert.equal(set.words.length, 0);
  });

  it("forgets a deleted piece, and a piece it never held changes nothing", () => {
    const set = new PieceSet([3, 64]);
    set.delete(3);
    set.delete(5);
    set.delete(100_000);
    assert.equal(set.size, 1);
    assert.deepEqual([...set], [64]);
  });

  it("keeps a finished peer as a count, and deleting from it keeps the rest", () => {
    const set = new PieceSet([1]);
    set.fill(100);
    assert.ok(set.full);
    assert.equal(set.size, 100);
    assert.equal(set.words.length, 0, "no bitmap for a full set");
    set.add(7);
    assert.equal(set.size, 100);
    set.delete(40);
    assert.ok(!set.full);
    assert.equal(set.size, 99);
    assert.ok(!set.has(40) && set.has(39) && set.has(99) && !set.has(100));
  });

  it("piecesToGive counts the parent's pieces the child lacks, as a plain set would", () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 200; round++) {
      const total = 1 + Math.floor(random() * 300);
      const parentPieces = new Set<number>();
      const childPieces = new Set<number>();
      for (let n = 0; n < total; n++) {
        if (random() < 0.5) parentPieces.add(n);
        if (random() < 0.3) childPieces.add(n);
      }
      assert.equal(piecesToGive(new PieceSet(parentPieces), new PieceSet(childPieces)), naiveToGive(parentPieces, childPieces), `round ${round}`);
    }
  });

  it("piecesToGive: a full parent gives what the child lacks, a full child takes nothing", () => {
    const full = new PieceSet();
    full.fill(10);
    assert.equal(piecesToGive(full, new PieceSet([1, 2])), 8);
    assert.equal(piecesToGive(new PieceSet([1, 2, 9]), full), 0);
    assert.equal(piecesToGive(new PieceSet([5]), new PieceSet()), 1);
    assert.equal(piecesToGive(new PieceSet(), new PieceSet([5])), 0);
  });
});
