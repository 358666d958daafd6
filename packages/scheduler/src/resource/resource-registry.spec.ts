import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, DownloadSchema, HostType } from "@lacewing/api";
import { hostInfo } from "../testing/fixtures.js";
import { ResourceRegistry } from "./resource-registry.js";

const NOW = 1_000_000;
const alice = { subject: "lacewing:peer:alice", ip: "10.0.0.1" };
const download = create(DownloadSchema, { url: "http://origin/file" });

describe("ResourceRegistry indexes", () => {
  it("counts hosts per owner (subject and address) as they are announced and deleted", () => {
    const registry = new ResourceRegistry();
    registry.announceHost(hostInfo("h1"), NOW, alice);
    registry.announceHost(hostInfo("h2"), NOW, alice);
    registry.announceHost(hostInfo("h1"), NOW + 1, alice); // a refresh is not another host
    registry.announceHost(hostInfo("h3"), NOW, { ...alice, ip: "10.0.0.2" });
    assert.equal(registry.hostsOwnedBy(alice), 2);
    assert.equal(registry.hostsOwnedBy({ ...alice, ip: "10.0.0.2" }), 1);
    registry.deleteHost("h1");
    assert.equal(registry.hostsOwnedBy(alice), 1);
    registry.expireHosts(NOW + 3_600_000);
    assert.equal(registry.hostsOwnedBy(alice), 0);
  });

  it("lists alive seed hosts, following a host that changes type and leaving out silent ones", () => {
    const registry = new ResourceRegistry();
    registry.announceHost(hostInfo("seed", { type: HostType.SEED }), NOW, undefined);
    registry.announceHost(hostInfo("normal"), NOW, undefined);
    registry.announceHost(hostInfo("old-seed", { type: HostType.SEED, announceIntervalSeconds: 1 }), NOW - 10_000, undefined);
    assert.deepEqual(
      registry.aliveSeedHosts(NOW).map((h) => h.id),
      ["seed"],
    );
    registry.announceHost(hostInfo("seed"), NOW, undefined);
    registry.announceHost(hostInfo("normal", { type: HostType.SEED }), NOW, undefined);
    assert.deepEqual(
      registry.aliveSeedHosts(NOW).map((h) => h.id),
      ["normal"],
    );
    registry.deleteHost("normal");
    assert.deepEqual(registry.aliveSeedHosts(NOW), []);
  });

  it("wakes the peers waiting on a task, and a wake with nobody waiting does not end a later wait", async () => {
    const registry = new ResourceRegistry();
    const waiting = registry.ensureTask("a".repeat(64), download, NOW);
    const wait = registry.waitForChange(waiting, 60_000, new AbortController().signal);
    registry.wakeWaiting();
    assert.equal(await wait, "changed");
    assert.equal(waiting.waiters.size, 0);
    // A second wake with nobody waiting must not resolve a later wait early.
    registry.wakeWaiting();
    const controller = new AbortController();
    const later = registry.waitForChange(waiting, 60_000, controller.signal);
    controller.abort();
    assert.equal(await later, "aborted");
  });
});
