import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmod, copyFile, mkdtemp, open, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { taskIdOf } from "@lacewing/common";
import { dfget as dfgetWith, metricValue, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { BIN, freePorts, logsFrom, runCommand } from "../helpers/processes.js";
import { waitUntil } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
const blob = randomBytesOf(32 * MiB + 777, 41);
const blobSha = sha256(blob);

interface Cluster {
  root: string;
  origin: TestOrigin;
  scheduler: SchedulerProcess | undefined;
  daemons: Daemon[];
}

let cluster: Cluster;

/** Small pieces, so a 32 MiB blob has enough of them for peers to trade while the faults happen. */
const dfget = (daemon: Daemon, url: string, out: string, ...extra: string[]): ReturnType<typeof dfgetWith> =>
  dfgetWith(daemon, url, out, "--piece-length", "1MiB", ...extra);

beforeEach(async () => {
  const root = await mkdtemp(join(tmpdir(), "lacewing-faults-"));
  const origin = new TestOrigin({ "/blob.bin": blob });
  await origin.start();
  cluster = { root, origin, scheduler: undefined, daemons: [] };
});

afterEach(async () => {
  for (const daemon of cluster.daemons) {
    daemon.child.kill("SIGCONT");
    await daemon.stop("SIGKILL");
  }
  await cluster.scheduler?.stop("SIGKILL");
  await cluster.origin.close();
  await rm(cluster.root, { recursive: true, force: true });
});

async function peer(name: string, scheduler: string, extra: string[] = []): Promise<Daemon> {
  const daemon = await startPeer(cluster.root, name, scheduler, extra);
  cluster.daemons.push(daemon);
  return daemon;
}

const peerBytes = (d: Daemon): Promise<number> => metricValue(d.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "peer" });
const uploaded = (d: Daemon): Promise<number> => metricValue(d.ports.metrics, "lacewing_dfdaemon_upload_bytes_total");

async function assertHoldsBlob(daemon: Daemon, result: { code: number | null; stderr: string }): Promise<void> {
  assert.equal(result.code, 0, `${daemon.name}: ${result.stderr}`);
  assert.equal(sha256(await readFile(join(cluster.root, `${daemon.name}.out`))), blobSha, `${daemon.name}'s bytes`);
}

/** A scheduler, a seed and finished peers that hold the blob, for the corrupt and stall cases. */
async function clusterWithHolders(holders: string[], extra: string[] = []): Promise<{ scheduler: SchedulerProcess; daemons: Daemon[] }> {
  const scheduler = await startScheduler();
  cluster.scheduler = scheduler;
  const daemons = [await peer("seed", scheduler.address, ["--seed", ...extra])];
  for (const name of holders) daemons.push(await peer(name, scheduler.address, extra));
  await waitForHosts(scheduler.address, daemons.length);
  for (const daemon of daemons.slice(1))
    await assertHoldsBlob(daemon, await dfget(daemon, cluster.origin.url("/blob.bin"), join(cluster.root, `${daemon.name}.out`)));
  return { scheduler, daemons };
}

describe("P2P pipelining", () => {
  it("children receive pieces from the seed while the seed is still fetching the task from a slow origin", async () => {
    cluster.origin.bytesPerSecond = 8 * MiB;
    const scheduler = await startScheduler();
    cluster.scheduler = scheduler;
    const seed = await peer("seed", scheduler.address, ["--seed"]);
    const children = [await peer("a", scheduler.address), await peer("b", scheduler.address)];
    await waitForHosts(scheduler.address, 3);
    const downloads = children.map((child) => dfget(child, cluster.origin.url("/blob.bin"), join(cluster.root, `${child.name}.out`)));
    await waitUntil("both children hold pieces from peers", async () => (await peerBytes(children[0]!)) > 0 && (await peerBytes(children[1]!)) > 0);
    const seedHas = await metricValue(seed.ports.metrics, "lacewing_dfdaemon_download_bytes_total", { source: "origin" });
    assert.ok(seedHas < blob.byteLength / 2, `the seed had only ${seedHas} of ${blob.byteLength} bytes when its children got their first pieces`);
    const results = await Promise.all(downloads);
    for (const [i, child] of children.entries()) await assertHoldsBlob(child, results[i]!);
    assert.equal(cluster.origin.bytesSent, blob.byteLength + 1);
  });
});

describe("P2P faults: every surviving peer ends with the right bytes", () => {
  it("a parent killed with SIGKILL mid-transfer", async () => {
    const scheduler = await startScheduler();
    cluster.scheduler = scheduler;
    const slow = ["--upload-rate-limit", "6MiB"];
    await peer("seed", scheduler.address, ["--seed", ...slow]);
    const children = [await peer("a", scheduler.address, slow), await peer("b", scheduler.address, slow), await peer("c", scheduler.address, slow)];
    await waitForHosts(scheduler.address, 4);
    // The victim's own dfget fails with its daemon rather than wait for it to come back.
    const downloads = children.map((child) =>
      dfget(child, cluster.origin.url("/blob.bin"), join(cluster.root, `${child.name}.out`), "--reconnect-timeout", "0"),
    );
    // Kill a child while it is serving pieces to the others and has not finished.
    let victim: Daemon | undefined;
    await waitUntil("a child uploads to the others", async () => {
      for (const child of children) if ((await uploaded(child)) > 0 && (await peerBytes(child)) < blob.byteLength) victim = child;
      return victim !== undefined;
    });
    victim!.child.kill("SIGKILL");
    const results = await Promise.all(downloads);
    for (const [i, child] of children.entries()) if (child !== victim) await assertHoldsBlob(child, results[i]!);
  });

  // A parent serving bytes that fail their digest is dropped and reported: hostile/parents.spec.ts (a forging parent).
  it("a corrupted copy renamed over a parent's data file is never served: pieces are read through the file the parent verified", async () => {
    // Without super-seeding the seed serves pieces it already sent, so the child does ask it.
    const { scheduler, daemons } = await clusterWithHolders(["good"], ["--super-seed-window", "0"]);
    const seed = daemons[0]!;
    const dataPath = join(seed.dir, "data", "tasks", taskIdOf({ url: cluster.origin.url("/blob.bin") }), "data");
    await copyFile(dataPath, `${dataPath}.rotten`);
    await chmod(`${dataPath}.rotten`, 0o644);
    const data = await open(`${dataPath}.rotten`, "r+");
    for (let offset = 100; offset < blob.byteLength; offset += 4 * MiB) await data.write(Buffer.from([blob[offset]! ^ 0xff]), 0, 1, offset);
    await data.close();
    await rename(`${dataPath}.rotten`, dataPath);
    const child = await peer("child", scheduler.address);
    await waitForHosts(scheduler.address, 3);
    const before = await uploaded(seed);
    const result = await dfget(child, cluster.origin.url("/blob.bin"), join(cluster.root, "child.out"));
    await assertHoldsBlob(child, result);
    assert.ok((await uploaded(seed)) > before, "the seed served the child");
    assert.equal(await metricValue(child.ports.metrics, "lacewing_dfdaemon_piece_failures_total", { reason: "corrupt" }), 0, "no piece failed its digest");
  });

  it("a parent that stalls (SIGSTOP) mid-transfer is dropped after the parent stall timeout", async () => {
    const slow = ["--upload-rate-limit", "8MiB"];
    const { scheduler, daemons } = await clusterWithHolders(["good"], slow);
    // The default --parent-stall-timeout (2s): a stopped host is left within it, not after the 30 s piece timeout.
    const child = await peer("child", scheduler.address);
    await waitForHosts(scheduler.address, 3);
    const seed = daemons[0]!;
    const before = await uploaded(seed);
    const download = dfget(child, cluster.origin.url("/blob.bin"), join(cluster.root, "child.out"));
    await waitUntil("the seed uploads to the child", async () => (await uploaded(seed)) > before);
    seed.child.kill("SIGSTOP");
    try {
      await assertHoldsBlob(child, await download);
      const timeouts = await metricValue(child.ports.metrics, "lacewing_dfdaemon_piece_failures_total", { reason: "timeout" });
      assert.ok(timeouts >= 1, `a stalled piece timed out:\n${child.output()}`);
    } finally {
      seed.child.kill("SIGCONT");
    }
  });

  it("the scheduler killed mid-download does not fail the downloads", async () => {
    const scheduler = await startScheduler();
    cluster.scheduler = scheduler;
    const slow = ["--upload-rate-limit", "8MiB"];
    await peer("seed", scheduler.address, ["--seed", ...slow]);
    const children = [await peer("a", scheduler.address, slow), await peer("b", scheduler.address, slow)];
    await waitForHosts(scheduler.address, 3);
    cluster.origin.bytesSent = 0;
    const downloads = children.map((child) => dfget(child, cluster.origin.url("/blob.bin"), join(cluster.root, `${child.name}.out`)));
    await waitUntil("the children receive pieces", async () => (await peerBytes(children[0]!)) > 0 && (await peerBytes(children[1]!)) > 0);
    await scheduler.stop("SIGKILL");
    const results = await Promise.all(downloads);
    for (const [i, child] of children.entries()) await assertHoldsBlob(child, results[i]!);
    assert.equal(cluster.origin.bytesSent, blob.byteLength + 1, "the parents kept serving; nobody went back to the origin");
  });

  it("a dfdaemon started before its scheduler works once the scheduler is up, without error spam", async () => {
    // The address the scheduler will have must be known before it runs: the one port picked ahead (freePorts).
    const [port] = (await freePorts(1)) as [number];
    const address = `127.0.0.1:${port}`;
    // At debug it logs each retry, which is what the test waits for instead of a fixed time.
    const early = await peer("early", address, ["--log-level", "debug"]);
    const seed = await peer("seed", address, ["--seed"]);
    // No scheduler yet: the download goes straight to the origin.
    const alone = await dfget(early, cluster.origin.url("/blob.bin"), join(cluster.root, "early.out"));
    await assertHoldsBlob(early, alone);
    await rm(join(cluster.root, "early.out"));
    // Two more retries, each of which could have logged a warning of its own.
    const retry = /"msg":"scheduler still unreachable"/;
    const retried = early
      .output()
      .split("\n")
      .filter((line) => retry.test(line)).length;
    await early.waitForLines(retry, { count: retried + 2, timeoutMs: 30_000 });
    const down = await runCommand(BIN.dfdaemon, ["status", "--socket", early.socket]);
    assert.equal(down.code, 2, "status exits 2 when no scheduler is reachable");
    assert.match(down.stdout, new RegExp(`${address}\\s+UNREACHABLE`));
    const warnings = early
      .output()
      .split("\n")
      .filter(logsFrom("warn"))
      .filter((line) => line.includes("scheduler unreachable"));
    assert.equal(warnings.length, 1, `one warning while the scheduler is down, not one per retry:\n${early.output()}`);

    cluster.scheduler = await startScheduler([], { port });
    await waitForHosts(address, 2);
    const up = await runCommand(BIN.dfdaemon, ["status", "--socket", early.socket, "--json"]);
    assert.equal(up.code, 0, up.stderr);
    const status = JSON.parse(up.stdout) as { schedulers: Array<{ address: string; reachable: boolean }>; cache: { tasks: number; bytes: number } };
    assert.deepEqual(status.schedulers, [{ address, reachable: true, lastError: "" }]);
    assert.deepEqual(status.cache, { bytes: blob.byteLength, quotaBytes: 0, tasks: 1 });
    const late = await peer("late", address);
    await waitForHosts(address, 3);
    const result = await dfget(late, cluster.origin.url("/blob.bin"), join(cluster.root, "late.out"));
    await assertHoldsBlob(late, result);
    assert.equal((JSON.parse(result.stdout) as { traffic: { peers: number } }).traffic.peers, blob.byteLength, "served by peers once the scheduler is up");
    void seed;
  });

  it("with back-to-source disabled and no scheduler, a download fails with a clear error and the daemon keeps working", async () => {
    // An address where nothing listens.
    const [port] = (await freePorts(1)) as [number];
    const lonely = await peer("lonely", `127.0.0.1:${port}`);
    const result = await dfgetWith(lonely, cluster.origin.url("/blob.bin"), join(cluster.root, "lonely.out"), "--disable-back-to-source");
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /back-to-source is disabled/);
    await assertHoldsBlob(lonely, await dfget(lonely, cluster.origin.url("/blob.bin"), join(cluster.root, "lonely.out")));
  });
});
