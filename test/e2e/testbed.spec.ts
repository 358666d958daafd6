import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { skipUnlessAvailable } from "../helpers/requirements.js";
import { Testbed, testbedUnavailable, type ScenarioResult } from "../testbed/testbed.js";

const PEERS = 4;
const SIZE_MIB = 16;
const skip = await skipUnlessAvailable("network testbed e2e", { other: [(await testbedUnavailable())?.replace(/^needs /, "")] });

function assertEveryPeerFinished(result: ScenarioResult): void {
  // Testbed.run throws on a failed dfget or a wrong sha256; here every peer host must also appear once.
  assert.deepEqual(result.downloads.map((d) => d.host).sort(), Array.from({ length: PEERS }, (_, i) => `peer${i + 1}`).sort());
  for (const d of result.downloads) {
    const traffic = d.report?.traffic;
    assert.ok(traffic !== undefined, `${d.host} reported no traffic`);
    assert.equal(traffic.origin + traffic.peers + traffic.cache, result.blobBytes, `${d.host}'s traffic adds up to the blob`);
  }
}

describe("network testbed: 4 peer hosts in namespaces with capped uplinks", { skip }, () => {
  let testbed: Testbed;

  before(async () => {
    testbed = await Testbed.start({ peers: PEERS, rateMbit: 200, sizeMiB: SIZE_MIB });
  });

  after(async () => {
    await testbed?.close();
  });

  it("p2p: every peer gets the blob with the right sha256 while the origin sends it about once", async () => {
    const result = await testbed.run("p2p");
    assertEveryPeerFinished(result);
    assert.equal(result.announced, true, "every dfdaemon announced itself to the scheduler");
    assert.ok(result.originBytes >= result.blobBytes, `origin sent ${result.originBytes} bytes, less than the blob`);
    assert.ok(result.originBytes <= 1.05 * result.blobBytes, `origin sent ${result.originBytes} bytes for a ${result.blobBytes}-byte blob`);
    const fromPeers = result.downloads.reduce((n, d) => n + (d.report?.traffic.peers ?? 0), 0);
    assert.ok(fromPeers > 0, "some bytes came from other peers");
  });

  it("straight from origin: every peer gets the blob and the origin sends it once per peer", async () => {
    const result = await testbed.run("origin");
    assertEveryPeerFinished(result);
    assert.ok(result.originBytes >= PEERS * result.blobBytes, `origin sent ${result.originBytes} bytes`);
    for (const d of result.downloads) assert.equal(d.report?.traffic.origin, result.blobBytes);
  });
});

describe("network testbed: a serving peer host taken away mid-transfer", { skip }, () => {
  let testbed: Testbed;

  // Slower links than above, so the downloads last long enough to take a host away in the middle of them.
  before(async () => {
    testbed = await Testbed.start({ peers: PEERS, rateMbit: 50, sizeMiB: SIZE_MIB });
  });

  after(async () => {
    await testbed?.close();
  });

  for (const scenario of ["p2p-kill", "p2p-cut"] as const)
    it(`${scenario}: every other peer gets the blob with the right sha256 and the origin still sends it about once`, async () => {
      const result = await testbed.run(scenario);
      const fault = result.fault;
      assert.ok(fault !== undefined);
      assert.ok(fault.servedBytes > 0, "the host taken away was serving");
      const others = Array.from({ length: PEERS }, (_, i) => `peer${i + 1}`).filter((host) => host !== fault.host);
      assert.deepEqual(result.downloads.map((d) => d.host).sort(), others.sort());
      for (const d of result.downloads) {
        const traffic = d.report!.traffic;
        assert.equal(traffic.origin + traffic.peers + traffic.cache, result.blobBytes, `${d.host}'s traffic adds up to the blob`);
      }
      assert.ok(result.originBytes <= 1.05 * result.blobBytes, `origin sent ${result.originBytes} bytes for a ${result.blobBytes}-byte blob`);
    });
});

describe("network testbed: two zones of 2 peer hosts joined by a counted router", { skip }, () => {
  let testbed: Testbed;

  before(async () => {
    testbed = await Testbed.start({ peers: PEERS, rateMbit: 200, sizeMiB: SIZE_MIB, zones: {} });
  });

  after(async () => {
    await testbed?.close();
  });

  it("isolation: no piece crosses the zones; zone b, with no seed of its own, fetches from the origin once", async () => {
    const result = await testbed.run("zones-isolation");
    assertEveryPeerFinished(result);
    assert.equal(result.crossZone!.pieces, 0, "no piece byte crossed the router");
    assert.ok(result.crossZone!.originToZoneB >= result.blobBytes, `the origin sent zone b ${result.crossZone!.originToZoneB} bytes`);
    assert.ok(result.originBytes <= 2.05 * result.blobBytes, `origin sent ${result.originBytes} bytes: once per zone`);
  });

  it("affinity with one seed: zone b gets every piece across the router, and nothing from the origin", async () => {
    const result = await testbed.run("zones-affinity");
    assertEveryPeerFinished(result);
    // Parents are only preferred in the same zone: pieces cross both ways, at most what every peer received.
    assert.ok(result.crossZone!.pieces >= result.blobBytes, `${result.crossZone!.pieces} piece bytes crossed: every piece at least once`);
    assert.ok(result.crossZone!.pieces <= PEERS * result.blobBytes, `${result.crossZone!.pieces} piece bytes crossed`);
    assert.equal(result.crossZone!.originToZoneB, 0);
    assert.ok(result.originBytes <= 1.05 * result.blobBytes, `origin sent ${result.originBytes} bytes`);
  });

  it("affinity --cross-zone-once with one seed: each piece crosses into zone b about once, then spreads inside it", async () => {
    const result = await testbed.run("zones-affinity-once");
    assertEveryPeerFinished(result);
    assert.ok(result.crossZone!.pieces >= result.blobBytes, `${result.crossZone!.pieces} piece bytes crossed: every piece at least once`);
    // Each of zone b's two peers fetching across would be 2 × the blob; the zone's first peer fetches for the other (endgame duplicates aside).
    assert.ok(result.crossZone!.pieces <= 1.5 * result.blobBytes, `${result.crossZone!.pieces} piece bytes crossed for a ${result.blobBytes}-byte blob`);
    assert.equal(result.crossZone!.originToZoneB, 0);
    assert.ok(result.originBytes <= 1.05 * result.blobBytes, `origin sent ${result.originBytes} bytes`);
  });

  it("affinity --cross-zone-once with a seed in each zone: no piece crosses, each zone's seed fetches from the origin", async () => {
    const result = await testbed.run("zones-affinity-seeds");
    assertEveryPeerFinished(result);
    assert.equal(result.crossZone!.pieces, 0, "no piece byte crossed the router");
    assert.ok(result.originBytes >= 2 * result.blobBytes && result.originBytes <= 2.05 * result.blobBytes, `origin sent ${result.originBytes} bytes`);
  });
});
