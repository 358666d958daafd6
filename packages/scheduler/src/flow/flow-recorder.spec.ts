import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { newPeer, type Peer } from "../resource/peer.js";
import { newTask, type Task } from "../resource/task.js";
import { DEFAULT_FLOW_LIMITS, FlowRecorder } from "./flow-recorder.js";
import { ORIGIN } from "./task-flow.js";

const download = { url: "http://origin.test/f", tag: "", application: "", filteredQueryParams: [], requestHeaders: {} } as unknown as Parameters<
  typeof newTask
>[1];

function taskWithPeers(id: string, count: number): { task: Task; peers: Peer[] } {
  const task = newTask(id.padStart(64, "0"), download, 0);
  const peers = Array.from({ length: count }, (_, i) => {
    const peer = newPeer({
      id: `peer-${i}-${"x".repeat(40)}`,
      taskId: task.id,
      hostId: `host-${i}-${"y".repeat(30)}`,
      triggered: false,
      heldPieces: [],
      now: 0,
    });
    task.peers.set(peer.id, peer);
    return peer;
  });
  return { task, peers };
}

describe("flow recorder", () => {
  it("records bytes per parent → child edge, the origin included, and each landing in order", () => {
    const flow = new FlowRecorder();
    const { task, peers } = taskWithPeers("1", 3);
    const [seed, a, b] = peers as [Peer, Peer, Peer];
    flow.pieceLanded(task, seed, "", 0, 100, 1_000);
    flow.pieceLanded(task, seed, "", 1, 100, 1_010);
    flow.pieceLanded(task, a, seed.id, 0, 100, 1_020);
    flow.pieceLanded(task, b, a.id, 0, 100, 1_030);
    flow.pieceLanded(task, b, seed.id, 1, 100, 1_040);
    const record = flow.flowOf(task.id)!;
    assert.deepEqual(record.peerIds, [seed.id, a.id, b.id]);
    assert.deepEqual(record.hostIds, [seed.hostId, a.hostId, b.hostId]);
    assert.deepEqual(
      record.edges().map((e) => [e.parent, e.child, e.bytes, e.pieces, e.firstMs, e.lastMs]),
      [
        [ORIGIN, 0, 200, 2, 0, 10],
        [0, 1, 100, 1, 20, 20],
        [1, 2, 100, 1, 30, 30],
        [0, 2, 100, 1, 40, 40],
      ],
    );
    const landings = record.landings(0);
    assert.deepEqual([...landings.child], [0, 0, 1, 2, 2]);
    assert.deepEqual([...landings.parent], [ORIGIN, ORIGIN, 0, 1, 0]);
    assert.deepEqual([...landings.piece], [0, 1, 0, 0, 1]);
    assert.deepEqual([...landings.ms], [0, 10, 20, 30, 40]);
    // Incremental reads return only what is new.
    assert.deepEqual([...record.landings(4).piece], [1]);
    assert.equal(record.landings(4).firstSeq, 4);
    assert.equal(record.landings(5).child.length, 0);
    assert.deepEqual(flow.sourcesOf(task.id, b.id), [
      { parentId: a.id, bytes: 100, pieces: 1 },
      { parentId: seed.id, bytes: 100, pieces: 1 },
    ]);
    assert.deepEqual(flow.sourcesOf(task.id, seed.id), [{ parentId: "", bytes: 200, pieces: 2 }]);
  });

  it("keeps only the most recent landings, and says how many a reader missed", () => {
    const flow = new FlowRecorder({ landingsPerTask: 32 });
    const { task, peers } = taskWithPeers("2", 1);
    for (let n = 0; n < 100; n++) flow.pieceLanded(task, peers[0]!, "", n, 1, n);
    const landings = flow.flowOf(task.id)!.landings(10);
    assert.equal(landings.firstSeq, 68);
    assert.equal(landings.dropped, 58);
    assert.deepEqual(
      [...landings.piece],
      Array.from({ length: 32 }, (_, i) => 68 + i),
    );
    assert.equal(flow.flowOf(task.id)!.edges()[0]?.pieces, 100, "edges count every landing, kept or not");
  });

  it("caps peers, edges and tasks, counting what it did not itemise, and drops the least recently fed task first", () => {
    const flow = new FlowRecorder({ tasks: 2, peersPerTask: 4, edgesPerTask: 3, replaceAfterIdleMs: 1 });
    const { task, peers } = taskWithPeers("3", 6);
    for (const [i, peer] of peers.entries()) flow.pieceLanded(task, peer, i === 0 ? "" : peers[i - 1]!.id, 0, 10, i);
    const record = flow.flowOf(task.id)!;
    assert.equal(record.peerIds.length, 4);
    assert.ok(record.droppedPeerLandings > 0);
    assert.equal(record.edgeCount, 3);
    assert.equal(record.droppedEdgeLandings, 1);
    const second = taskWithPeers("4", 1);
    const third = taskWithPeers("5", 1);
    flow.pieceLanded(second.task, second.peers[0]!, "", 0, 1, 10);
    flow.pieceLanded(task, peers[0]!, "", 1, 1, 11); // task 3 is fed again: task 4 is now the oldest
    flow.pieceLanded(third.task, third.peers[0]!, "", 0, 1, 12);
    assert.equal(flow.size, 2);
    assert.ok(flow.flowOf(task.id) !== undefined);
    assert.equal(flow.flowOf(second.task.id), undefined);
  });

  it("gives a new task no flow while every kept flow is busy, so busy tasks never push each other out", () => {
    const flow = new FlowRecorder({ tasks: 2, replaceAfterIdleMs: 1_000 });
    const [a, b, c] = ["8", "9", "a"].map((id) => taskWithPeers(id, 1));
    flow.pieceLanded(a!.task, a!.peers[0]!, "", 0, 1, 0);
    flow.pieceLanded(b!.task, b!.peers[0]!, "", 0, 1, 100);
    for (let number = 0; number < 5; number++) flow.pieceLanded(c!.task, c!.peers[0]!, "", number, 1, 500 + number);
    assert.equal(flow.flowOf(c!.task.id), undefined);
    assert.equal(flow.landingsWithoutFlow, 5);
    assert.equal(flow.flowOf(a!.task.id)?.landed, 1, "the busy flows are kept whole");
    // Once the least recently fed flow is idle for replaceAfterIdleMs, the new task takes its place.
    flow.pieceLanded(c!.task, c!.peers[0]!, "", 5, 1, 1_000);
    assert.equal(flow.flowOf(a!.task.id), undefined);
    assert.equal(flow.flowOf(c!.task.id)?.landed, 1);
    assert.ok(flow.flowOf(b!.task.id) !== undefined);
  });

  it("forgets flows idle for longer than idleMs", () => {
    const flow = new FlowRecorder({ idleMs: 1_000 });
    const a = taskWithPeers("6", 1);
    const b = taskWithPeers("7", 1);
    flow.pieceLanded(a.task, a.peers[0]!, "", 0, 1, 0);
    flow.pieceLanded(b.task, b.peers[0]!, "", 0, 1, 900);
    assert.equal(flow.forgetIdle(1_500), 1);
    assert.equal(flow.flowOf(a.task.id), undefined);
    assert.ok(flow.flowOf(b.task.id) !== undefined);
  });

  it("stays within its measured bounds: bytes per landing, per edge, per peer and per task at every cap", (t) => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const heap = (): number => {
      gc();
      gc();
      return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    };
    /**
     * Bytes one flow holds, averaged over `count` flows (one is too small to
     * weigh against the heap's noise). The tasks and peers exist in the
     * registry anyway, so they are made before weighing: only what the
     * recorder adds is measured.
     */
    const weighOnce = (count: number, peers: number, feed: (land: (child: number, parent: number) => void) => void): number => {
      const fixtures = Array.from({ length: count }, (_, i) => taskWithPeers(`w${peers}-${i}-${Math.random()}`, peers));
      const recorder = new FlowRecorder({ tasks: count });
      const before = heap();
      for (const { task, peers: list } of fixtures) {
        let n = 0;
        feed((child, parent) => recorder.pieceLanded(task, list[child]!, parent < 0 ? "" : list[parent]!.id, n % 4096, 1 << 20, n++));
      }
      const bytes = (heap() - before) / count;
      assert.equal(recorder.size, count, "every flow was still held when weighed");
      return bytes;
    };
    // The heap's noise only ever adds (compiled code, a table grown elsewhere): the least of three weighings is the truest.
    const weigh = (...args: Parameters<typeof weighOnce>): number => Math.min(weighOnce(...args), weighOnce(...args), weighOnce(...args));
    const limits = DEFAULT_FLOW_LIMITS;
    // Every cap reached: every peer from the origin, then from other peers in turn, past the ring's size.
    const full = weigh(8, limits.peersPerTask, (land) => {
      for (let round = 0, n = 0; n < limits.landingsPerTask + 1000; round++)
        for (let child = 0; child < limits.peersPerTask; child++, n++) land(child, round === 0 ? -1 : (child + round) % limits.peersPerTask);
    });
    // The same 2 048 landings over 64 peers, on 2 048 edges or on 64: the difference is the edges'.
    const manyEdges = weigh(64, 64, (land) => {
      for (let child = 0; child < 64; child++) {
        land(child, -1);
        for (let k = 1; k < 32; k++) land(child, (child + k) % 64);
      }
    });
    const fewEdges = weigh(64, 64, (land) => {
      for (let child = 0; child < 64; child++) for (let i = 0; i < 32; i++) land(child, -1);
    });
    const perEdge = (manyEdges - fewEdges) / (2048 - 64);
    // 1 024 peers with one landing each (one edge each): what is left after edges and landings is the peers'.
    const manyPeers = weigh(32, 1024, (land) => {
      for (let child = 0; child < 1024; child++) land(child, -1);
    });
    const perPeer = (manyPeers - 1024 * perEdge - 1024 * 12) / 1024;
    const small = weigh(64, 3, (land) => {
      for (let n = 0; n < 400; n++) for (let child = 0; child < 3; child++) land(child, child === 0 ? -1 : 0);
    });
    t.diagnostic(
      `a landing: 12 B (typed arrays); an edge: ${Math.round(perEdge)} B; a peer: ${Math.round(perPeer)} B; ` +
        `a flow at every cap (${limits.peersPerTask} peers, ${limits.edgesPerTask} edges, ${limits.landingsPerTask} landings): ${Math.round(full / 1024)} KiB, ` +
        `${limits.tasks} of them ${Math.round((full * limits.tasks) / 1024 / 1024)} MiB; 3 peers × 400 pieces: ${Math.round(small / 1024)} KiB`,
    );
    // The bounds flow-recorder.ts and docs/ARCHITECTURE.md state.
    assert.ok(full < 384 * 1024, `a full flow holds ${full} B`);
    assert.ok(perEdge < 128, `an edge holds ${perEdge} B`);
    assert.ok(perPeer < 160, `a peer holds ${perPeer} B`);
    assert.ok(small < 64 * 1024, `a small flow holds ${small} B`);
  });
});
