import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_CONTENT_LENGTH,
  MAX_PIECE_COUNT,
  MAX_PIECE_LENGTH,
  MIN_AUTO_PIECE_LENGTH,
  MIN_PIECE_LENGTH,
  PIECE_LENGTH_RULE,
  isPieceLength,
  TARGET_MAX_PIECES,
  pieceCountOf,
  pieceGeometryProblem,
  pieceLengthFor,
  pieceRangeOf,
} from "./pieces.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe("pieceLengthFor", () => {
  it("uses the 1 MiB minimum for small, empty and unknown lengths", () => {
    assert.equal(MIN_AUTO_PIECE_LENGTH, MiB);
    for (const length of [-1, 0, 1, 4 * MiB, 100 * MiB, TARGET_MAX_PIECES * MiB]) {
      assert.equal(pieceLengthFor(length), MiB, String(length));
    }
  });

  it("grows to the next power of two once the minimum would exceed 500 pieces", () => {
    assert.equal(pieceLengthFor(TARGET_MAX_PIECES * MiB + 1), 2 * MiB);
    assert.equal(pieceLengthFor(TARGET_MAX_PIECES * 4 * MiB + 1), 8 * MiB);
    assert.equal(pieceLengthFor(10 * GiB), 32 * MiB);
  });

  it("always returns a power of two between 1 MiB and 64 MiB", () => {
    for (let length = 1; length < 200 * GiB; length = Math.ceil(length * 1.7)) {
      const piece = pieceLengthFor(length);
      assert.ok(piece >= MIN_AUTO_PIECE_LENGTH && piece <= MAX_PIECE_LENGTH, `${length} -> ${piece}`);
      assert.equal(piece & (piece - 1), 0, `${piece} is a power of two`);
    }
  });

  it("keeps the count at or under 500 up to the cap, picking the smallest such size", () => {
    for (let length = MiB; length <= TARGET_MAX_PIECES * MAX_PIECE_LENGTH; length = Math.ceil(length * 1.3)) {
      const piece = pieceLengthFor(length);
      assert.ok(pieceCountOf(length, piece) <= TARGET_MAX_PIECES, `${length} -> ${piece}`);
      if (piece > MIN_AUTO_PIECE_LENGTH) assert.ok(pieceCountOf(length, piece / 2) > TARGET_MAX_PIECES, `${length}: ${piece / 2} would do`);
    }
  });

  it("caps at 64 MiB, letting the count pass 500 for huge tasks", () => {
    assert.equal(MAX_PIECE_LENGTH, 64 * MiB);
    assert.equal(pieceLengthFor(100 * GiB), 64 * MiB);
    assert.equal(pieceCountOf(100 * GiB, pieceLengthFor(100 * GiB)), 1600);
  });
});

describe("pieceCountOf", () => {
  it("counts whole pieces plus a short last one", () => {
    assert.equal(pieceCountOf(0, 4 * MiB), 0);
    assert.equal(pieceCountOf(-1, 4 * MiB), 0);
    assert.equal(pieceCountOf(1, 4 * MiB), 1);
    assert.equal(pieceCountOf(4 * MiB, 4 * MiB), 1);
    assert.equal(pieceCountOf(4 * MiB + 1, 4 * MiB), 2);
    assert.equal(pieceCountOf(10 * MiB, 4 * MiB), 3);
  });
});

describe("pieceRangeOf", () => {
  it("returns offset and length, with a short last piece", () => {
    const total = 10 * MiB;
    assert.deepEqual(pieceRangeOf(0, 4 * MiB, total), { number: 0, offset: 0, length: 4 * MiB });
    assert.deepEqual(pieceRangeOf(1, 4 * MiB, total), { number: 1, offset: 4 * MiB, length: 4 * MiB });
    assert.deepEqual(pieceRangeOf(2, 4 * MiB, total), { number: 2, offset: 8 * MiB, length: 2 * MiB });
  });

  it("tiles the content exactly", () => {
    const total = 37 * MiB + 123;
    const piece = pieceLengthFor(total);
    let next = 0;
    for (let n = 0; n < pieceCountOf(total, piece); n++) {
      const range = pieceRangeOf(n, piece, total);
      assert.equal(range.offset, next);
      next += range.length;
    }
    assert.equal(next, total);
  });

  it("throws RangeError for negative, past-the-end and fractional piece numbers", () => {
    assert.throws(() => pieceRangeOf(-1, 4 * MiB, 10 * MiB), RangeError);
    assert.throws(() => pieceRangeOf(3, 4 * MiB, 10 * MiB), RangeError);
    assert.throws(() => pieceRangeOf(1, 4 * MiB, 4 * MiB), RangeError);
    assert.throws(() => pieceRangeOf(0, 4 * MiB, 0), RangeError);
    assert.throws(() => pieceRangeOf(0.5, 4 * MiB, 10 * MiB), RangeError);
  });
});

describe("piece length bounds", () => {
  it("MIN_PIECE_LENGTH is the smallest length accepted, MIN_AUTO_PIECE_LENGTH the smallest chosen, and the rule says both bounds as they are", () => {
    assert.equal(isPieceLength(MIN_PIECE_LENGTH), true);
    assert.equal(isPieceLength(MIN_PIECE_LENGTH / 2), false);
    assert.equal(isPieceLength(MAX_PIECE_LENGTH), true);
    assert.equal(isPieceLength(MAX_PIECE_LENGTH * 2), false);
    assert.ok(MIN_AUTO_PIECE_LENGTH >= MIN_PIECE_LENGTH && isPieceLength(MIN_AUTO_PIECE_LENGTH));
    assert.equal(pieceLengthFor(1), MIN_AUTO_PIECE_LENGTH);
    assert.equal(PIECE_LENGTH_RULE, "a power of two from 64KiB to 64MiB");
    assert.equal(pieceGeometryProblem(6 * MiB, 1), `piece length 1 is not ${PIECE_LENGTH_RULE}`);
  });
});

describe("pieceGeometryProblem", () => {
  it("accepts what pieceLengthFor chooses, and any power of two a caller may ask for", () => {
    for (const length of [0, 1, 100 * MiB, 10 * GiB, 4000 * GiB]) assert.equal(pieceGeometryProblem(length, pieceLengthFor(length)), undefined, String(length));
    assert.equal(pieceGeometryProblem(100 * MiB, MIN_PIECE_LENGTH), undefined);
    assert.equal(pieceGeometryProblem(-1, 4 * MiB), undefined);
  });

  it("refuses 1-byte and 2 GiB pieces, odd sizes, negative or huge lengths and too many pieces", () => {
    assert.match(pieceGeometryProblem(6 * MiB, 1) ?? "", /piece length 1 is not/);
    assert.match(pieceGeometryProblem(6 * MiB, 2 * GiB) ?? "", /piece length/);
    assert.match(pieceGeometryProblem(6 * MiB, 3 * MiB) ?? "", /piece length/);
    assert.match(pieceGeometryProblem(-2, 4 * MiB) ?? "", /content length/);
    assert.match(pieceGeometryProblem(MAX_CONTENT_LENGTH + 1, MAX_PIECE_LENGTH) ?? "", /content length/);
    assert.match(pieceGeometryProblem((MAX_PIECE_COUNT + 1) * MIN_PIECE_LENGTH, MIN_PIECE_LENGTH) ?? "", /more than 131072 pieces/);
  });
});
