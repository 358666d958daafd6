import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ORIGIN, columnsOf, layoutFlow } from "./flow-layout.js";

const seed = { hostType: "seed" as const };
const peer = { hostType: "normal" as const };

describe("flow layout", () => {
  it("puts the origin first, the peers it fed next, and each peer one past its nearest source", () => {
    const edges = [
      { parent: ORIGIN, child: 0, bytes: 100 },
      { parent: 0, child: 1, bytes: 60 },
      { parent: 1, child: 2, bytes: 30 },
      { parent: 0, child: 2, bytes: 30 },
      { parent: 2, child: 1, bytes: 10 },
    ];
    assert.deepEqual(columnsOf([seed, peer, peer], edges), [1, 2, 2]);
  });

  it("keeps a seed that has nothing yet in the seeds' column and waiting peers in a column of their own", () => {
    assert.deepEqual(columnsOf([seed, peer, peer], [{ parent: ORIGIN, child: 1, bytes: 5 }]), [1, 1, 2]);
    assert.deepEqual(columnsOf([peer], []), [2]);
  });

  it("widens edges with their bytes, the largest the widest, and marks edges between peers of one column as backwards", () => {
    const layout = layoutFlow(
      [seed, peer, peer],
      [
        { parent: ORIGIN, child: 0, bytes: 400 },
        { parent: 0, child: 1, bytes: 100 },
        { parent: 0, child: 2, bytes: 100 },
        { parent: 1, child: 2, bytes: 1 },
      ],
    );
    const widths = layout.edges.map((e) => e.width);
    assert.equal(Math.max(...widths), widths[0]);
    assert.ok(widths[1]! > widths[3]!);
    assert.deepEqual(
      layout.edges.map((e) => e.backwards),
      [false, false, false, true],
    );
    assert.equal(layout.nodes.find((n) => n.index === ORIGIN)?.column, 0);
    assert.ok(layout.nodes.every((n) => n.x >= 0 && n.y >= 0 && n.x <= layout.width && n.y <= layout.height));
  });
});
