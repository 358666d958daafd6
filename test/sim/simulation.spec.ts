import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runSimulation } from "./simulation.js";

const MiB = 1024 * 1024;

describe("runSimulation", () => {
  it("brings every node the whole task with the origin sending it once, and conserves bytes", async () => {
    const size = 24 * MiB;
    const result = await runSimulation({ nodes: 20, sizeBytes: size, rateMbit: 100, zones: 2 });
    assert.equal(result.completed, 20);
    assert.equal(result.failed, 0);
    const peers = result.hosts.filter((host) => host.kind === "peer");
    for (const peer of peers) {
      assert.equal(peer.receivedBytes, size, `${peer.id} received every byte once`);
      assert.ok(Number.isFinite(peer.completedAtMs), `${peer.id} finished`);
    }
    const seed = result.hosts.find((host) => host.kind === "seed")!;
    assert.equal(seed.receivedBytes, size, "the seed fetched the task");
    assert.ok(result.originBytes >= size, "the origin sent every byte at least once");
    // One probe byte per back-to-source fetch; here only the seed's.
    assert.equal(result.originBytes, size + 1);
    const received = result.hosts.reduce((sum, host) => sum + host.receivedBytes, 0);
    const sent = result.hosts.reduce((sum, host) => sum + host.sentBytes, 0);
    assert.equal(seed.fromOriginBytes, size + 1, "the seed's origin bytes are its pieces and the probe");
    for (const peer of peers) assert.equal(peer.fromOriginBytes, 0, `${peer.id} got everything from peers`);
    // Every byte sent was stored once, or arrived as a copy nobody needed any more.
    assert.equal(sent, received + result.traffic.wastedBytes + 1);
    assert.ok(result.p50Ms <= result.p99Ms && result.p99Ms <= result.lastMs);
    assert.ok(result.lastMs >= result.lowerBoundMs, "no node beats F/U");
    assert.ok(result.crossZoneBytes > 0 && result.crossZoneBytes < sent);
  });

  it("gives the same run for the same random seed", async () => {
    const input = { nodes: 12, sizeBytes: 8 * MiB, rateMbit: 100, randomSeed: 3 };
    const [a, b] = [await runSimulation(input), await runSimulation(input)];
    assert.equal(a.lastMs, b.lastMs);
    assert.equal(a.events, b.events);
  });

  it("finishes every surviving node when some crash halfway, through blocklists and new parents", async () => {
    const size = 16 * MiB;
    const result = await runSimulation({ nodes: 20, sizeBytes: size, rateMbit: 100, failFraction: 0.2 });
    assert.equal(result.failed, 4);
    assert.equal(result.completed, 16);
    for (const peer of result.hosts.filter((host) => host.kind === "peer" && Number.isFinite(host.completedAtMs))) assert.equal(peer.receivedBytes, size);
    assert.ok(result.traffic.parentFailures > 0, "children saw parents die");
  });

  it("refuses nonsense options with the flag to fix", async () => {
    await assert.rejects(runSimulation({ nodes: 0, sizeBytes: MiB, rateMbit: 10 }), /--nodes/);
    await assert.rejects(runSimulation({ nodes: 4, sizeBytes: MiB, rateMbit: -1 }), /--rate/);
    await assert.rejects(runSimulation({ nodes: 4, sizeBytes: MiB, rateMbit: 10, zones: 9 }), /--zones/);
  });
});
