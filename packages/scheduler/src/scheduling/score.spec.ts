import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HostType } from "@lacewing/api";
import { taskWorld } from "../testing/fixtures.js";
import { buildScoreContext, locationAffinity, rankParents } from "./score.js";

function setup(childFields: { idc?: string; location?: string } = {}) {
  const world = taskWorld();
  const childHost = world.host("child-host", childFields);
  const child = world.peer("child", "child-host", "pending");
  const rank = (candidates: ReturnType<typeof world.peer>[], random: () => number = () => 0) =>
    rankParents(buildScoreContext({ task: world.task, child, childHost, hosts: world.registry.hosts, now: 1_000_000 }, candidates), candidates, random).map(
      (p) => p.id,
    );
  return { ...world, child, rank };
}

describe("locationAffinity", () => {
  it("is the shared prefix of a|b|c over the longer location", () => {
    assert.equal(locationAffinity("cn|sh|dc1", "cn|sh|dc1"), 1);
    assert.equal(locationAffinity("cn|sh|dc1", "cn|sh|dc2"), 2 / 3);
    assert.equal(locationAffinity("cn|sh", "us|ny"), 0);
    assert.equal(locationAffinity("", "cn"), 0);
  });
});

describe("rankParents", () => {
  it("puts a seed first while seeds are the only holders", () => {
    const { host, peer, rank } = setup();
    host("seed", { type: HostType.SEED });
    host("normal");
    const seed = peer("seed-peer", "seed", "back_to_source", [0, 1]);
    const downloading = peer("normal-peer", "normal", "back_to_source");
    assert.deepEqual(rank([downloading, seed]), ["seed-peer", "normal-peer"]);
  });

  it("prefers normal holders over the seed once they hold the content", () => {
    const { host, peer, rank } = setup();
    host("seed", { type: HostType.SEED });
    host("normal");
    const seed = peer("seed-peer", "seed", "succeeded");
    const normal = peer("normal-peer", "normal", "succeeded");
    assert.deepEqual(rank([seed, normal]), ["normal-peer", "seed-peer"]);
  });

  it("prefers the same idc, then the closer location, other things equal", () => {
    const { host, peer, rank } = setup({ idc: "a", location: "cn|sh|dc1" });
    host("far", { idc: "b", location: "us|ny|dc1" });
    host("same-idc", { idc: "a", location: "cn|bj|dc1" });
    host("near", { idc: "b", location: "cn|sh|dc2" });
    const candidates = [peer("far", "far", "succeeded"), peer("near", "near", "succeeded"), peer("same-idc", "same-idc", "succeeded")];
    assert.deepEqual(rank(candidates), ["same-idc", "near", "far"]);
  });

  it("prefers a parent with more of what the child lacks and more free upload slots", () => {
    const { host, peer, rank } = setup();
    host("h1");
    host("h2");
    host("busy", { concurrentUploadLimit: 10, concurrentUploadCount: 9 });
    const few = peer("few", "h1", "running", [0]);
    const many = peer("many", "h2", "running", [0, 1, 2, 3]);
    const busy = peer("busy", "busy", "running", [0, 1, 2, 3]);
    assert.deepEqual(rank([few, busy, many]), ["many", "busy", "few"]);
  });

  it("spreads children over near-equal parents instead of always picking the same one", () => {
    const { host, peer, rank } = setup();
    const candidates = ["a", "b", "c", "d"].map((id) => {
      host(id);
      return peer(id, id, "succeeded");
    });
    const firsts = new Set<string>();
    for (let i = 0; i < 200; i++) firsts.add(rank(candidates, Math.random)[0] ?? "");
    assert.equal(firsts.size, 4);
  });

  it("ranks a parent marked bad last", () => {
    const { host, peer, task, rank } = setup();
    host("h1");
    host("h2");
    const slow = peer("slow", "h1", "succeeded");
    const ok = peer("ok", "h2", "running", [0]);
    task.badParents.add("slow");
    assert.deepEqual(rank([slow, ok]), ["ok", "slow"]);
  });
});
