import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ASSIGNMENT_HOLD_MS, recordAssignment } from "../resource/host.js";
import { taskWorld } from "../testing/fixtures.js";
import { filterCandidateParents, parentRejection, type FilterContext } from "./filter.js";

const NOW = 1_000_000;

function setup() {
  const world = taskWorld(NOW);
  const childHost = world.host("child-host", { idc: "idc-a" });
  const child = world.peer("child", "child-host", "pending");
  const ctx = (fields: Partial<FilterContext> = {}): FilterContext => ({
    task: world.task,
    child,
    childHost,
    hosts: world.registry.hosts,
    topology: "affinity",
    now: NOW,
    ownZone: false,
    ...fields,
  });
  return { ...world, child, childHost, ctx };
}

describe("filterCandidateParents", () => {
  it("accepts a peer on another host that holds a piece the child lacks", () => {
    const { host, peer, ctx } = setup();
    host("h1");
    const parent = peer("p1", "h1", "running", [0]);
    assert.deepEqual(filterCandidateParents(ctx()), [parent]);
  });

  it("never offers a peer on the child's own host", () => {
    const { peer, ctx } = setup();
    peer("same-host-peer", "child-host", "succeeded", [0, 1]);
    assert.equal(parentRejection(ctx(), peer("other", "child-host", "succeeded")), "same host");
    assert.deepEqual(filterCandidateParents(ctx()), []);
  });

  it("drops a parent blocklisted for this child but not for others", () => {
    const { host, peer, child, ctx } = setup();
    host("h1");
    const parent = peer("p1", "h1", "succeeded");
    child.blocklist.add("p1");
    assert.equal(parentRejection(ctx(), parent), "blocklisted");
  });

  it("drops a parent whose host stopped announcing, judged at filter time", () => {
    const { host, peer, ctx } = setup();
    host("h1", { announceIntervalSeconds: 1 });
    const parent = peer("p1", "h1", "succeeded");
    assert.equal(parentRejection(ctx({ now: NOW + 2_000 }), parent), undefined);
    assert.equal(parentRejection(ctx({ now: NOW + 2_001 }), parent), "host not alive");
  });

  it("drops a parent whose host has no free upload slots, counting children already assigned", () => {
    const { host, peer, ctx } = setup();
    host("full", { concurrentUploadLimit: 2, concurrentUploadCount: 2 });
    const almost = host("almost", { concurrentUploadLimit: 2, concurrentUploadCount: 1 });
    const p1 = peer("p1", "full", "succeeded");
    const p2 = peer("p2", "almost", "succeeded");
    assert.equal(parentRejection(ctx(), p1), "no free upload slots");
    assert.equal(parentRejection(ctx(), p2), undefined);
    recordAssignment(almost, NOW);
    assert.equal(parentRejection(ctx(), p2), "no free upload slots");
    assert.equal(parentRejection(ctx({ now: NOW + ASSIGNMENT_HOLD_MS }), p2), undefined);
  });

  it("never crosses idc with isolation, but may with affinity", () => {
    const { host, peer, ctx } = setup();
    host("far", { idc: "idc-b" });
    const far = peer("far-peer", "far", "succeeded");
    assert.equal(parentRejection(ctx({ topology: "isolation" }), far), "other idc");
    assert.equal(parentRejection(ctx({ topology: "affinity" }), far), undefined);
    assert.equal(parentRejection(ctx({ topology: "affinity", ownZone: true }), far), "other idc, and the child's is served from inside");
  });

  it("drops failed peers and peers with nothing the child lacks", () => {
    const { host, peer, child, ctx } = setup();
    host("h1");
    child.pieces.add(0);
    assert.equal(parentRejection(ctx(), peer("failed", "h1", "failed", [1])), "failed");
    assert.equal(parentRejection(ctx(), peer("same-pieces", "h1", "running", [0])), "nothing to give");
    assert.equal(parentRejection(ctx(), peer("waiting", "h1", "pending")), "nothing to give");
  });

  it("accepts a back-to-source peer or a triggered seed download with zero pieces, for pipelining", () => {
    const { host, peer, ctx } = setup();
    host("h1");
    host("seed", { type: 2 });
    assert.equal(parentRejection(ctx(), peer("bts", "h1", "back_to_source")), undefined);
    assert.equal(parentRejection(ctx(), peer("triggered", "h1", "running", [], true)), undefined);
    assert.equal(parentRejection(ctx(), peer("seed-peer", "seed", "running")), undefined);
  });

  it("drops a parent excluded for serving a piece that failed its digest, and the peers of a tainted host, for every child", () => {
    const { host, peer, task, ctx } = setup();
    host("h1");
    host("h2");
    const parent = peer("p1", "h1", "succeeded");
    const other = peer("p2", "h2", "succeeded");
    assert.equal(parentRejection(ctx(), parent), undefined);
    task.excludedParents.add("p1");
    assert.equal(parentRejection(ctx(), parent), "served a piece that failed its digest");
    task.taintedHosts.add("h2");
    assert.equal(parentRejection(ctx(), other), "holds a copy that failed the task's digest");
  });
});
