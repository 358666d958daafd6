import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HostType } from "@lacewing/api";
import { silentLogger } from "@lacewing/common";
import type { HostRecord } from "../resource/host.js";
import { taskWorld } from "../testing/fixtures.js";
import { PersistentKeeper } from "./persistent-keeper.js";
import { PLACEMENT_TIMEOUT_MS, planReplicas } from "./replicas.js";

const NOW = 1_000_000;

/** A world with one persistent task (3 replicas, expiring in an hour), a keeper on a clock the test moves, and the orders it gave. */
function persistentWorld(replicas = 3) {
  const world = taskWorld(NOW);
  world.task.persistent = { replicas, expiresAt: NOW + 3_600_000, ttlMs: 3_600_000, placements: new Map() };
  world.task.contentLength = 10;
  world.task.pieceLength = 65_536;
  world.task.totalPieces = 1;
  let now = NOW;
  const placed: string[] = [];
  const deleted: string[] = [];
  let refuse = false;
  const keeper = new PersistentKeeper({
    registry: world.registry,
    logger: silentLogger(),
    now: () => now,
    placeReplica: async (host: HostRecord) => {
      placed.push(host.id);
      if (refuse) throw new Error("refused");
    },
    orderDelete: async (host: HostRecord) => {
      deleted.push(host.id);
    },
  });
  keeper.track(world.task);
  return {
    ...world,
    keeper,
    placed,
    deleted,
    advance: (ms: number) => {
      now += ms;
      // Hosts keep announcing while the clock moves, unless a test stops one.
      for (const host of world.registry.hosts.values()) if (!host.id.startsWith("silent")) host.lastAnnouncedAt = now;
    },
    refuse: (value: boolean) => {
      refuse = value;
    },
    now: () => now,
  };
}

describe("planReplicas", () => {
  it("places the missing copies on seed peers first, then on ordinary peers when seeds run out", () => {
    const { task, registry, host, peer } = persistentWorld(4);
    host("importer");
    host("seed-1", { type: HostType.SEED });
    host("seed-2", { type: HostType.SEED });
    host("n1");
    host("n2");
    peer("imp", "importer", "succeeded");
    const chosen = planReplicas(task, registry.hosts, NOW).map((h) => h.id);
    assert.equal(chosen.length, 3);
    assert.deepEqual(chosen.slice(0, 2).sort(), ["seed-1", "seed-2"]);
    assert.ok(["n1", "n2"].includes(chosen[2]!));
  });

  it("places nothing while no alive host holds a copy: there is no origin to fetch one from", () => {
    const { task, registry, host, peer } = persistentWorld();
    host("importer", { announceIntervalSeconds: 1 });
    host("n1");
    peer("imp", "importer", "succeeded");
    assert.deepEqual(planReplicas(task, registry.hosts, NOW + 2_001), []);
  });

  it("counts placements on their way until they time out, and never plans for an expired task", () => {
    const { task, registry, host, peer } = persistentWorld(2);
    host("importer");
    host("n1");
    host("n2");
    peer("imp", "importer", "succeeded");
    task.persistent!.placements.set("n1", NOW);
    assert.deepEqual(planReplicas(task, registry.hosts, NOW + 1_000), []);
    for (const h of registry.hosts.values()) h.lastAnnouncedAt = NOW + PLACEMENT_TIMEOUT_MS;
    assert.equal(planReplicas(task, registry.hosts, NOW + PLACEMENT_TIMEOUT_MS).length, 1);
    assert.deepEqual(planReplicas(task, registry.hosts, task.persistent!.expiresAt), []);
  });

  it("does not count a tainted host's copy, nor place one there", () => {
    const { task, registry, host, peer } = persistentWorld(2);
    host("importer");
    host("bad");
    host("n1");
    peer("imp", "importer", "succeeded");
    peer("b", "bad", "succeeded");
    task.taintedHosts.add("bad");
    assert.deepEqual(
      planReplicas(task, registry.hosts, NOW).map((h) => h.id),
      ["n1"],
    );
  });
});

describe("PersistentKeeper", () => {
  it("orders copies up to the replica count once, then a new one when a holder's host is dropped", async () => {
    const w = persistentWorld(2);
    w.host("importer");
    w.host("n1");
    w.host("n2");
    w.peer("imp", "importer", "succeeded");
    w.keeper.reconcile();
    w.keeper.reconcile();
    assert.equal(w.placed.length, 1, "one order, not one per pass");
    const first = w.placed[0]!;
    w.peer("replica", first, "succeeded");
    w.advance(1_000);
    w.keeper.reconcile();
    assert.equal(w.placed.length, 1, "at its count");
    assert.deepEqual(w.keeper.status(w.task).held.sort(), ["importer", first].sort());

    // The replica's host stops announcing and the scheduler drops it: a new copy goes elsewhere.
    w.registry.deleteHost(first);
    w.keeper.reconcile();
    assert.equal(w.placed.length, 2);
    assert.notEqual(w.placed[1], first);
    assert.ok(["n1", "n2"].includes(w.placed[1]!));
  });

  it("replaces a holder that deleted its copy", () => {
    const w = persistentWorld(2);
    w.host("importer");
    w.host("n1");
    w.host("n2");
    w.peer("imp", "importer", "succeeded");
    w.peer("r1", "n1", "succeeded");
    w.keeper.reconcile();
    assert.deepEqual(w.placed, []);
    w.registry.deleteTaskOnHost("n1", w.task.id);
    w.keeper.reconcile();
    assert.equal(w.placed.length, 1);
  });

  it("asks again after a refused order, and after an order whose download never started", async () => {
    const w = persistentWorld(2);
    w.host("importer");
    w.host("n1");
    w.peer("imp", "importer", "succeeded");
    w.refuse(true);
    w.keeper.reconcile();
    await new Promise((resolve) => setImmediate(resolve));
    w.refuse(false);
    w.keeper.reconcile();
    assert.deepEqual(w.placed, ["n1", "n1"], "a refusal frees the host at once");
    w.advance(1_000);
    w.keeper.reconcile();
    assert.equal(w.placed.length, 2, "an accepted order waits for its download");
    w.advance(15_000);
    w.keeper.reconcile();
    assert.equal(w.placed.length, 3, "no download registered within 15 s: ordered again");
  });

  it("removes an expired task everywhere: every holder is ordered to delete and the scheduler forgets it", () => {
    const w = persistentWorld(2);
    w.host("importer");
    w.host("n1");
    w.peer("imp", "importer", "succeeded");
    w.peer("r1", "n1", "succeeded");
    const expiresAt = w.task.persistent!.expiresAt;
    w.advance(3_600_000);
    w.keeper.reconcile();
    assert.deepEqual(w.deleted.sort(), ["importer", "n1"]);
    assert.equal(w.registry.tasks.has(w.task.id), false);
    assert.equal(w.keeper.wasRemoved(w.task.id, expiresAt), true, "a holder that was away cannot bring that copy back");
    assert.equal(w.keeper.wasRemoved(w.task.id, expiresAt + 1), false, "a fresh import is welcome");
  });

  it("delete removes the task at once, placements in flight included, and remembers it until its expiry", () => {
    const w = persistentWorld(3);
    w.host("importer");
    w.host("n1");
    w.host("n2");
    w.peer("imp", "importer", "succeeded");
    w.keeper.reconcile();
    assert.equal(w.placed.length, 2);
    const expiresAt = w.task.persistent!.expiresAt;
    assert.equal(w.keeper.remove(w.task, "deleted"), 3);
    assert.deepEqual(w.deleted.sort(), ["importer", "n1", "n2"]);
    assert.equal(w.registry.tasks.has(w.task.id), false);
    assert.equal(w.keeper.wasRemoved(w.task.id, expiresAt), true);
    w.advance(3_600_000);
    w.keeper.reconcile();
    assert.equal(w.keeper.wasRemoved(w.task.id, expiresAt), false, "forgotten once the copies would have expired anyway");
  });
});
