import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rendezvousOrder, rendezvousPick } from "./rendezvous.js";

const NODES = ["scheduler-0:8002", "scheduler-1:8002", "scheduler-2:8002", "scheduler-3:8002"];
const KEYS = Array.from({ length: 1000 }, (_, i) => `task-${i}`);

describe("rendezvous hashing", () => {
  it("is deterministic and independent of node list order", () => {
    for (const key of KEYS.slice(0, 50)) {
      assert.equal(rendezvousPick(key, NODES), rendezvousPick(key, NODES));
      assert.deepEqual(rendezvousOrder(key, [...NODES].reverse()), rendezvousOrder(key, NODES));
    }
  });

  it("orders every node exactly once, owner first", () => {
    const order = rendezvousOrder("task-x", NODES);
    assert.deepEqual([...order].sort(), [...NODES].sort());
    assert.equal(order[0], rendezvousPick("task-x", NODES));
  });

  it("returns undefined with no nodes", () => {
    assert.equal(rendezvousPick("task-x", []), undefined);
    assert.deepEqual(rendezvousOrder("task-x", []), []);
  });

  it("spreads 1000 keys so each of 4 nodes owns 10-40%", () => {
    const owned = new Map<string, number>(NODES.map((n) => [n, 0]));
    for (const key of KEYS) {
      const owner = rendezvousPick(key, NODES);
      assert.ok(owner !== undefined);
      owned.set(owner, (owned.get(owner) ?? 0) + 1);
    }
    for (const [node, count] of owned) assert.ok(count >= 100 && count <= 400, `${node} owns ${count}`);
  });

  it("moves only the removed node's keys", () => {
    const removed = NODES[1] ?? "";
    const remaining = NODES.filter((n) => n !== removed);
    let moved = 0;
    for (const key of KEYS) {
      const before = rendezvousPick(key, NODES);
      const after = rendezvousPick(key, remaining);
      if (before === removed) {
        moved++;
        // The new owner is the runner-up of the old order.
        assert.equal(after, rendezvousOrder(key, NODES)[1]);
      } else {
        assert.equal(after, before, key);
      }
    }
    assert.ok(moved > 0);
  });
});
