import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pickNextPiece, type ChoiceInput, type InflightRequest, type ParentView } from "./piece-choice.js";

/** A parent holding `pieces`, of which the child wants those not in `have`. */
function parent(id: string, pieces: number[], extra: Partial<ParentView> = {}, have: number[] = []): ParentView {
  const useful = new Set(pieces.filter((n) => !have.includes(n)));
  return { id, useful, inflight: 0, usable: true, speed: Number.POSITIVE_INFINITY, elsewhere: new Map(), ...extra };
}

/** A choice input over `parents`; holders are counted from the pieces they are useful for. */
function input(parents: ParentView[], options: { inflight?: Map<number, InflightRequest[]>; random?: () => number } = {}): ChoiceInput {
  return {
    parents,
    holders: (number) => parents.filter((p) => p.useful.has(number)).length,
    inflight: options.inflight ?? new Map(),
    perParentLimit: 2,
    window: 4,
    scan: 64,
    now: 1_000,
    random: options.random ?? (() => 0),
  };
}

describe("pickNextPiece", () => {
  it("asks the idlest parent for its rarest wanted piece", () => {
    const a = parent("a", [0, 1, 2, 3], { inflight: 1 });
    const b = parent("b", [0, 1, 2, 3, 4]);
    assert.deepEqual(pickNextPiece(input([a, b])), { parentId: "b", piece: 4, duplicate: false }, "b is idle; 4 only b holds");
  });

  it("among equally idle parents prefers the faster, and among equally rare pieces picks one of the lowest few at random", () => {
    const slow = parent("slow", [0, 1, 2, 3, 4, 5, 6, 7], { speed: 1 });
    const fast = parent("fast", [0, 1, 2, 3, 4, 5, 6, 7], { speed: 10 });
    assert.equal(pickNextPiece(input([slow, fast]))?.parentId, "fast");
    const picks = new Set([0, 0.3, 0.6, 0.99].map((r) => pickNextPiece(input([fast], { random: () => r }))!.piece));
    assert.deepEqual([...picks].sort(), [0, 1, 2, 3], "the window is the four lowest equally rare pieces");
  });

  it("skips pieces held, in flight, refused as sent elsewhere, and parents that are busy or at their limit", () => {
    const inflight = new Map<number, InflightRequest[]>([[1, [{ parentId: "a", startedAt: 0 }]]]);
    const a = parent("a", [0, 1, 2], { elsewhere: new Map([[2, 5_000]]) }, [0]);
    assert.deepEqual(pickNextPiece(input([a], { inflight })), undefined, "0 is held, 1 in flight, 2 sent elsewhere");
    assert.equal(pickNextPiece(input([parent("b", [3], { usable: false })])), undefined, "a parent backing off is not asked");
    assert.equal(pickNextPiece(input([parent("c", [3], { inflight: 2 })])), undefined, "a parent at its pipeline limit is not asked");
    const expired = parent("d", [2], { elsewhere: new Map([[2, 999]]) });
    assert.equal(pickNextPiece(input([expired]))?.piece, 2, "an elsewhere refusal ends");
  });

  it("in the endgame asks an idle parent for the piece in flight longest elsewhere, at most two copies", () => {
    const inflight = new Map<number, InflightRequest[]>([
      [6, [{ parentId: "slow", startedAt: 500 }]],
      [7, [{ parentId: "slow", startedAt: 100 }]],
    ]);
    const slow = parent("slow", [6, 7], { inflight: 1 });
    const idle = parent("idle", [6, 7]);
    const endgame = input([slow, idle], { inflight });
    assert.deepEqual(pickNextPiece(endgame), { parentId: "idle", piece: 7, duplicate: true });
    inflight.set(7, [...inflight.get(7)!, { parentId: "idle", startedAt: 900 }]);
    assert.deepEqual(pickNextPiece({ ...endgame, parents: [slow, { ...idle, inflight: 0 }] }), { parentId: "idle", piece: 6, duplicate: true });
    inflight.set(6, [...inflight.get(6)!, { parentId: "other", startedAt: 900 }]);
    assert.equal(pickNextPiece({ ...endgame, parents: [slow, { ...idle, inflight: 0 }] }), undefined, "two copies of each: no third");
  });

  it("is not in the endgame while any wanted piece that a parent holds is not in flight, nor with a busy parent only", () => {
    const inflight = new Map<number, InflightRequest[]>([[7, [{ parentId: "slow", startedAt: 0 }]]]);
    const slow = parent("slow", [6, 7], { inflight: 2 });
    const idle = parent("idle", [7]);
    assert.equal(pickNextPiece(input([slow, idle], { inflight })), undefined, "6 is still to ask of slow once it has room");
    const onlySeven = parent("slow", [7], { inflight: 2 });
    const busy = parent("busy", [7], { usable: false });
    assert.equal(pickNextPiece(input([onlySeven, busy], { inflight })), undefined, "no idle, usable parent to ask");
  });

  it("weighs at most `scan` pieces of a parent per choice, whatever the piece count", () => {
    const all = Array.from({ length: 100_000 }, (_, n) => n);
    const parents = Array.from({ length: 8 }, (_, i) => parent(`p${i}`, all));
    let weighed = 0;
    const choice = pickNextPiece({ ...input(parents), holders: () => (weighed++, 8), random: () => 0.5 });
    assert.notEqual(choice, undefined);
    assert.equal(weighed, 64, "one parent, its first 64 wanted pieces");
  });
});
