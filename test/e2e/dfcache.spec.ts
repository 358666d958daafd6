import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { randomBytesOf } from "../helpers/origin.js";
import { schedulerClient } from "../helpers/pki.js";
import { BIN, runCommand, type CommandResult } from "../helpers/processes.js";

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

function dfcache(daemon: Daemon, ...args: string[]): Promise<CommandResult> {
  return runCommand(BIN.dfcache, [...args, "--socket", daemon.socket, "--json"]);
}

interface StatJson {
  ok: boolean;
  local: boolean;
  persistent: boolean;
  contentLength: number;
  replicasWanted: number;
  replicasHeld: number | null;
  holders: string[];
  expiresAt: string | null;
  error?: { code: string };
}

async function stat(daemon: Daemon, id: string): Promise<{ code: number; json: StatJson }> {
  const result = await dfcache(daemon, "stat", id);
  return { code: result.code ?? -1, json: JSON.parse(result.stdout) as StatJson };
}

/** Polls `dfcache stat` on `daemon` until `done` holds; fails after `timeoutMs` with the last answer. */
async function waitForStat(daemon: Daemon, id: string, done: (s: { code: number; json: StatJson }) => boolean, timeoutMs = 40_000): Promise<StatJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await stat(daemon, id);
    if (done(answer)) return answer.json;
    if (Date.now() > deadline) throw new Error(`dfcache stat ${id} on ${daemon.name}: still ${JSON.stringify(answer)}`);
    await sleep(250);
  }
}

function hostIdOf(daemon: Daemon): string {
  return String(daemon.started["hostId"]);
}

/** Whether the daemon's store holds a directory for the task (a copy, complete or not). */
async function storeHolds(daemon: Daemon, id: string): Promise<boolean> {
  return (await readdir(join(daemon.dir, "data", "tasks")).catch(() => [] as string[])).includes(id);
}

/** Waits until the task's directory is gone from the daemon's store: the store forgets a task at once and removes its files right after. */
async function waitUntilRemoved(daemon: Daemon, id: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await storeHolds(daemon, id)) {
    if (Date.now() > deadline) throw new Error(`${daemon.name} still stores ${id}`);
    await sleep(100);
  }
}

describe("dfcache on loopback: persistent cache tasks with replicas, TTL and delete, scheduler + seed + 6 dfdaemons", () => {
  let root: string;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let importer: Daemon;
  let peers: Daemon[];
  const all = (): Daemon[] => [seed, importer, ...peers];
  /** Daemons the tests killed. */
  const dead = new Set<Daemon>();
  const live = (): Daemon[] => all().filter((d) => !dead.has(d));
  // 64 MiB keeps CI fast; LACEWING_DFCACHE_MIB=1024 is the 1 GiB checkpoint, run by hand.
  const checkpoint = randomBytesOf(Number(process.env["LACEWING_DFCACHE_MIB"] ?? 64) * MiB + 12345, 71);
  let checkpointId = "";

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-dfcache-"));
    // Hosts are dropped 2 × 2 s after their last announcement; the scheduler looks every second.
    scheduler = await startScheduler(["--gc-interval", "1s"]);
    seed = await startPeer(root, "seed", scheduler.address, ["--seed"]);
    importer = await startPeer(root, "importer", scheduler.address);
    peers = await Promise.all(["a", "b", "c", "d", "e"].map((name) => startPeer(root, name, scheduler.address)));
    await waitForHosts(scheduler.address, 7);
    await writeFile(join(root, "checkpoint.bin"), checkpoint);
  });

  after(async () => {
    await Promise.all(all().map((d) => d?.stop()));
    await scheduler?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("import prints the content's sha256 as the id, and the scheduler places the replicas asked for, a seed first", async () => {
    const result = await dfcache(importer, "import", join(root, "checkpoint.bin"), "--replicas", "3", "--ttl", "10m");
    assert.equal(result.code, 0, result.stderr);
    const json = JSON.parse(result.stdout) as { taskId: string; contentLength: number; announced: boolean; replicas: number };
    assert.equal(json.taskId, sha256(checkpoint));
    assert.equal(json.contentLength, checkpoint.byteLength);
    assert.equal(json.announced, true);
    checkpointId = json.taskId;
    const plain = await runCommand(BIN.dfcache, ["import", join(root, "checkpoint.bin"), "--replicas", "3", "--ttl", "10m", "--socket", importer.socket]);
    assert.equal(plain.stdout, `${checkpointId}\n`, "without --json, import prints only the id");

    const held = await waitForStat(importer, checkpointId, (s) => s.code === 0 && s.json.replicasHeld === 3);
    assert.equal(held.local, true);
    assert.equal(held.persistent, true);
    assert.equal(held.replicasWanted, 3);
    assert.ok(held.holders.includes(hostIdOf(importer)), "the importer holds it");
    assert.ok(held.holders.includes(hostIdOf(seed)), "the seed peer holds a replica");
  });

  it("four nodes export it at once and get identical bytes, all from peers", async () => {
    const exporters = peers.slice(0, 4);
    const results = await Promise.all(exporters.map((peer) => dfcache(peer, "export", checkpointId, "-O", join(root, `${peer.name}.out`))));
    for (const [i, result] of results.entries()) {
      assert.equal(result.code, 0, result.stderr);
      const json = JSON.parse(result.stdout) as { traffic: { origin: number; peers: number; cache: number } };
      assert.equal(json.traffic.origin, 0);
      assert.equal(json.traffic.peers + json.traffic.cache, checkpoint.byteLength);
      assert.equal(sha256(await readFile(join(root, `${exporters[i]!.name}.out`))), checkpointId, `${exporters[i]!.name}'s output`);
    }
  });

  it("with the importer killed, a fresh node still exports it from the replicas", async () => {
    await importer.stop("SIGKILL");
    dead.add(importer);
    const fresh = await startPeer(root, "fresh", scheduler.address);
    peers.push(fresh);
    await waitForHosts(scheduler.address, 7);
    const result = await dfcache(fresh, "export", checkpointId, "-O", join(root, "fresh.out"));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sha256(await readFile(join(root, "fresh.out"))), checkpointId);
  });

  it("a restarted scheduler learns the task again, with its replicas and expiry, from the holders' re-announcements", async () => {
    const before = await waitForStat(peers[0]!, checkpointId, (s) => s.code === 0 && s.json.replicasHeld !== null && s.json.replicasHeld >= 3);
    const port = Number(scheduler.address.slice(scheduler.address.lastIndexOf(":") + 1));
    await scheduler.stop();
    scheduler = await startScheduler(["--gc-interval", "1s"], { port });
    await waitForHosts(scheduler.address, 7);
    // Asked directly: only the holders' announcements can have told the new scheduler.
    const client = schedulerClient(scheduler.address);
    try {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const answer = await client.statTask({ taskId: checkpointId }, { timeoutMs: 2_000 }).catch(() => undefined);
        if (answer?.persistent !== undefined && answer.persistent.replicasHeld >= 3) {
          assert.equal(answer.persistent.cache?.replicas, 3);
          assert.equal(new Date(Number(answer.persistent.cache?.expiresAtMs)).toISOString(), before.expiresAt, "the same expiry, not a new TTL");
          break;
        }
        if (Date.now() > deadline) throw new Error(`the restarted scheduler does not know the task: ${String(answer?.persistent?.replicasHeld)}`);
        await sleep(250);
      }
    } finally {
      client.close();
    }
  });

  it("a replica lost with its host is placed again from the remaining holders", async () => {
    const owner = peers[4]!;
    const bytes = randomBytesOf(8 * MiB + 7, 72);
    await writeFile(join(root, "two.bin"), bytes);
    const result = await dfcache(owner, "import", join(root, "two.bin"), "--replicas", "2");
    assert.equal(result.code, 0, result.stderr);
    const id = sha256(bytes);
    const before = await waitForStat(owner, id, (s) => s.code === 0 && s.json.replicasHeld === 2);
    const lostId = before.holders.find((hostId) => hostId !== hostIdOf(owner))!;
    const lost = all().find((d) => hostIdOf(d) === lostId)!;
    assert.ok(lost !== undefined, `holder ${lostId} is one of ours`);
    await lost.stop("SIGKILL");
    dead.add(lost);
    const restored = await waitForStat(owner, id, (s) => s.code === 0 && s.json.replicasHeld === 2 && !s.json.holders.includes(lostId));
    const replacement = all().find((d) => hostIdOf(d) === restored.holders.find((h) => h !== hostIdOf(owner)))!;
    assert.ok(await storeHolds(replacement, id), "the new holder stores it");
    // The killed host's daemon is not coming back; the remaining tests use the others.
    peers = peers.filter((p) => p !== lost);
  });

  it("TTL expiry removes the task from every holder, and stat then says it is gone", async () => {
    const owner = peers[0]!;
    const bytes = randomBytesOf(3 * MiB, 73);
    await writeFile(join(root, "short.bin"), bytes);
    const result = await dfcache(owner, "import", join(root, "short.bin"), "--replicas", "3", "--ttl", "10s");
    assert.equal(result.code, 0, result.stderr);
    const id = sha256(bytes);
    const held = await waitForStat(owner, id, (s) => s.code === 0 && s.json.replicasHeld === 3);
    const holders = all().filter((d) => held.holders.includes(hostIdOf(d)));
    assert.equal(holders.length, 3);
    for (const holder of holders) await waitForStat(holder, id, (s) => s.code === 8 && s.json.error?.code === "LW_ERR_CACHE_NOT_FOUND", 30_000);
    for (const holder of holders) await waitUntilRemoved(holder, id);
  });

  it("delete on any node removes the task from every holder", async () => {
    const owner = peers[1]!;
    const bytes = randomBytesOf(3 * MiB, 74);
    await writeFile(join(root, "gone.bin"), bytes);
    const imported = await dfcache(owner, "import", join(root, "gone.bin"), "--replicas", "3");
    assert.equal(imported.code, 0, imported.stderr);
    const id = sha256(bytes);
    const held = await waitForStat(owner, id, (s) => s.code === 0 && s.json.replicasHeld === 3);
    const holders = all().filter((d) => held.holders.includes(hostIdOf(d)));
    const other = live().find((d) => !held.holders.includes(hostIdOf(d)))!;
    // From a holder: its own copy goes, and the scheduler's order to it meets a copy already gone.
    const deleted = await dfcache(holders[1]!, "delete", id);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((JSON.parse(deleted.stdout) as { holders: number }).holders, 3);
    for (const holder of holders) await waitForStat(holder, id, (s) => s.code === 8, 20_000);
    for (const holder of holders) await waitUntilRemoved(holder, id);
    const again = await dfcache(other, "export", id, "-O", join(root, "gone.out"));
    assert.equal(again.code, 8, again.stderr);
  });

  it("bad input fails with one line, the right exit code and nothing written", async () => {
    const node = peers[0]!;
    const unknown = "ab".repeat(32);
    const tasksBefore = await readdir(join(node.dir, "data", "tasks"));
    const cases: Array<{ args: string[]; code: number; error: string }> = [
      { args: ["export", unknown, "-O", join(root, "unknown.out")], code: 8, error: "LW_ERR_CACHE_NOT_FOUND" },
      { args: ["stat", unknown], code: 8, error: "LW_ERR_CACHE_NOT_FOUND" },
      { args: ["delete", unknown], code: 8, error: "LW_ERR_CACHE_NOT_FOUND" },
      { args: ["import", join(root, "missing.bin")], code: 7, error: "LW_ERR_INPUT" },
      { args: ["import", root], code: 7, error: "LW_ERR_INPUT" },
      { args: ["import", join(root, "short.bin"), "--id", "NOT-AN-ID"], code: 2, error: "LW_ERR_USAGE" },
      { args: ["import", join(root, "short.bin"), "--ttl", "soon"], code: 2, error: "LW_ERR_USAGE" },
      { args: ["import", join(root, "short.bin"), "--ttl", "30d"], code: 2, error: "LW_ERR_USAGE" },
      { args: ["import", join(root, "short.bin"), "--replicas", "0"], code: 2, error: "LW_ERR_USAGE" },
      { args: ["import", join(root, "short.bin"), "--replicas", "65"], code: 2, error: "LW_ERR_USAGE" },
      { args: ["export", "xyz", "-O", join(root, "bad.out")], code: 2, error: "LW_ERR_USAGE" },
    ];
    for (const { args, code, error } of cases) {
      const result = await dfcache(node, ...args);
      assert.equal(result.code, code, `dfcache ${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, `one line: ${result.stderr}`);
      assert.match(result.stderr, /^dfcache: /);
      assert.equal((JSON.parse(result.stdout) as { error: { code: string } }).error.code, error, args.join(" "));
    }
    await mkdir(join(root, "outputs"), { recursive: true });
    assert.deepEqual(
      (await readdir(root)).filter((name) => name.endsWith(".out") && ["unknown.out", "bad.out"].includes(name)),
      [],
      "no output was written",
    );
    assert.deepEqual(await readdir(join(node.dir, "data", "tasks")), tasksBefore, "no task was stored");
  });
});
