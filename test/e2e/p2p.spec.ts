import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { schedulerClient } from "../helpers/pki.js";
import { pieceLengthFor, rendezvousPick, taskIdOf } from "@lacewing/common";
import { dfget, metricValue, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

interface DfgetJson {
  ok: boolean;
  traffic: { origin: number; peers: number; cache: number };
}

describe("P2P on loopback: origin + scheduler + seed peer + 3 dfdaemons", () => {
  let root: string;
  let origin: TestOrigin;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let peers: Daemon[];
  const blob = randomBytesOf(64 * MiB + 4321, 31);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-p2p-"));
    origin = new TestOrigin({ "/blob.bin": blob, "/second.bin": randomBytesOf(24 * MiB, 32) });
    await origin.start();
    scheduler = await startScheduler();
    seed = await startPeer(root, "seed", scheduler.address, ["--seed"]);
    peers = await Promise.all(["a", "b", "c"].map((name) => startPeer(root, name, scheduler.address)));
    await waitForHosts(scheduler.address, 4);
  });

  after(async () => {
    await Promise.all([seed, ...(peers ?? [])].map((d) => d?.stop()));
    await scheduler?.stop();
    await origin?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("three concurrent downloads get the right bytes, the origin sends the content once, and the bytes flow between peers", async () => {
    origin.bytesSent = 0;
    const results = await Promise.all(peers.map((peer) => dfget(peer, origin.url("/blob.bin"), join(root, `${peer.name}.out`))));
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    for (const peer of peers) assert.equal(sha256(await readFile(join(root, `${peer.name}.out`))), sha256(blob), `${peer.name}'s output`);

    // Once: the seed's probe byte plus the content, no matter how many peers asked.
    assert.equal(origin.bytesSent, blob.byteLength + 1);
    const reports = results.map((r) => JSON.parse(r.stdout) as DfgetJson);
    for (const report of reports) {
      assert.equal(report.traffic.origin, 0, "no peer went to the origin");
      assert.equal(report.traffic.peers, blob.byteLength);
    }

    // Every byte a peer got from a parent was uploaded by some parent.
    const fromPeers = await Promise.all(peers.map((p) => metricValue(p.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "peer" })));
    const uploaded = await Promise.all([seed, ...peers].map((p) => metricValue(p.ports.metrics, "lacewing_dfdaemon_upload_bytes_total")));
    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
    assert.equal(sum(fromPeers), 3 * blob.byteLength);
    // Parents count what they sent; a child drops the slower copy of a piece it asked of two parents at the end (endgame): at most a piece per race.
    const races = await Promise.all(peers.map((p) => metricValue(p.ports.metrics, "lacewing_dfdaemon_endgame_requests_total")));
    const wasted = sum(uploaded) - sum(fromPeers);
    assert.ok(
      wasted >= 0 && wasted <= sum(races) * pieceLengthFor(blob.byteLength),
      `uploaded ${wasted} B more than downloaded in ${sum(races)} endgame races`,
    );
    assert.ok(uploaded[0]! > 0, "the seed uploaded");
    assert.equal(await metricValue(seed.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" }), blob.byteLength);
  });

  it("a later download on a peer that lacks the task comes from peers that finished it, with no origin traffic", async () => {
    origin.bytesSent = 0;
    const late = await startPeer(root, "late", scheduler.address);
    try {
      await waitForHosts(scheduler.address, 5);
      const result = await dfget(late, origin.url("/blob.bin"), join(root, "late.out"));
      assert.equal(result.code, 0, result.stderr);
      assert.equal(sha256(await readFile(join(root, "late.out"))), sha256(blob));
      assert.equal(origin.bytesSent, 0);
      assert.equal((JSON.parse(result.stdout) as DfgetJson).traffic.peers, blob.byteLength);
    } finally {
      await late.stop();
    }
  });

  it("a URL the origin does not have fails on every peer with the origin's status, not a hang", async () => {
    const started = Date.now();
    const results = await Promise.all(peers.map((peer) => dfget(peer, origin.url("/missing.bin"), join(root, `${peer.name}-missing.out`))));
    for (const result of results) {
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /404/, result.stderr);
    }
    assert.ok(Date.now() - started < 60_000, "failed within a minute");
  });

  it("the scheduler counts the parents it handed out and the peer traffic reported to it", async () => {
    const r = await dfget(peers[0]!, origin.url("/second.bin"), join(root, "second.out"));
    assert.equal(r.code, 0, r.stderr);
    const scheduled = await metricValue(scheduler.metricsPort, "lacewing_scheduler_schedule_total", { result: "parents" });
    assert.ok(scheduled >= 4, `scheduler handed out parents ${scheduled} times`);
    const peerTraffic = await metricValue(scheduler.metricsPort, "lacewing_scheduler_traffic_bytes_total", { type: "peer" });
    assert.ok(peerTraffic >= 3 * blob.byteLength, "the scheduler saw peer traffic reported");
  });
});

describe("secrets stay out of logs and disks", () => {
  it("an Authorization header travels to the origin through the scheduler and seed but is never logged or stored", async () => {
    const root = await mkdtemp(join(tmpdir(), "lacewing-secret-"));
    const secret = "Bearer s3cr3t-t0ken-do-not-log";
    const origin = new TestOrigin({ "/private.bin": randomBytesOf(6 * MiB, 51) });
    origin.requireHeader = ["authorization", secret];
    await origin.start();
    const scheduler = await startScheduler(["--log-level", "trace"]);
    const daemons: Daemon[] = [];
    try {
      daemons.push(await startPeer(root, "seed", scheduler.address, ["--seed", "--log-level", "trace"]));
      daemons.push(await startPeer(root, "node", scheduler.address, ["--log-level", "trace"]));
      await waitForHosts(scheduler.address, 2);
      const result = await dfget(daemons[1]!, origin.url("/private.bin"), join(root, "private.out"), "-H", `Authorization: ${secret}`, "--log-level", "trace");
      assert.equal(result.code, 0, result.stderr);
      assert.ok(origin.requests > 0 && origin.rejected === 0, "the seed sent the header to the origin");
      const outputs = [scheduler.output(), ...daemons.map((d) => d.output()), result.stdout, result.stderr];
      for (const output of outputs) assert.ok(!output.includes("s3cr3t"), `secret found in:\n${output.slice(0, 2000)}`);
      for (const file of await filesUnder(root)) {
        if (file.endsWith("private.out") || file.endsWith("/data")) continue; // the content itself
        assert.ok(!(await readFile(file)).includes("s3cr3t"), `secret stored in ${file}`);
      }
    } finally {
      for (const daemon of daemons) await daemon.stop();
      await scheduler.stop();
      await origin.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe("several schedulers", () => {
  it("each task is scheduled by the one scheduler rendezvous hashing picks, and every daemon agrees", async () => {
    const root = await mkdtemp(join(tmpdir(), "lacewing-shard-"));
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 16; i++) files[`/f${i}.bin`] = randomBytesOf(2 * MiB + i, 60 + i);
    const origin = new TestOrigin(files);
    await origin.start();
    const schedulers = [await startScheduler(), await startScheduler()];
    const list = schedulers.map((s) => s.address).join(",");
    const daemons: Daemon[] = [];
    try {
      daemons.push(await startPeer(root, "seed", list, ["--seed"]), await startPeer(root, "a", list), await startPeer(root, "b", list));
      for (const s of schedulers) await waitForHosts(s.address, 3);
      const endpoints = schedulers.map((s) => s.address).sort();
      const owners = new Set<string>();
      // Three tasks owned by each scheduler (the ports, hence the owners, differ from run to run).
      const byOwner = new Map<string, string[]>();
      for (const path of Object.keys(files)) {
        const owner = rendezvousPick(taskIdOf({ url: origin.url(path) }), endpoints)!;
        byOwner.set(owner, [...(byOwner.get(owner) ?? []), path]);
      }
      const chosen = [...byOwner.values()].flatMap((paths) => paths.slice(0, 3));
      for (const path of chosen) {
        for (const name of ["a", "b"]) {
          const daemon = daemons.find((d) => d.name === name)!;
          const result = await dfget(daemon, origin.url(path), join(root, `${name}${path}`));
          assert.equal(result.code, 0, result.stderr);
        }
        const taskId = taskIdOf({ url: origin.url(path) });
        const owner = rendezvousPick(taskId, endpoints)!;
        owners.add(owner);
        for (const s of schedulers) {
          const client = schedulerClient(s.address);
          const stat = await client.statTask({ taskId }).catch(() => undefined);
          client.close();
          if (s.address === owner) assert.equal(stat?.peerCount, 3, `${path}: the owner saw the seed and both peers`);
          else assert.equal(stat, undefined, `${path}: ${s.address} does not own the task`);
        }
      }
      assert.equal(owners.size, 2, "tasks on both schedulers were checked");
    } finally {
      for (const daemon of daemons) await daemon.stop();
      for (const s of schedulers) await s.stop();
      await origin.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
