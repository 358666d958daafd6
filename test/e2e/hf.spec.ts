import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { taskIdOf } from "@lacewing/common";
import { startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { TestHub, hubEnv } from "../helpers/hub.js";
import { startManagerProcess, type ManagerProcess } from "../helpers/manager.js";
import { randomBytesOf } from "../helpers/origin.js";
import { BIN, runCommand, type CommandResult } from "../helpers/processes.js";

const MiB = 1024 * 1024;
const TOKEN = "hf_e2e_secret_token";
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

interface DfgetJson {
  ok: boolean;
  taskId: string;
  url: string;
  traffic: { origin: number; peers: number; cache: number };
  error?: { code: string; message: string };
}

interface DirectoryJson {
  files: Array<{ key: string; url: string; status: string }>;
  summary: { downloaded: number; unchanged: number };
}

describe("hf:// through a scheduler, a seed peer and 3 dfdaemons, with a test hub and its storage host", () => {
  let root: string;
  let hub: TestHub;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let peers: Daemon[];
  let manager: ManagerProcess;
  const v1 = randomBytesOf(12 * MiB + 777, 41);
  const v2 = randomBytesOf(9 * MiB + 5, 42);
  let commit1: string;

  function dfget(peer: Daemon, url: string, out: string, env: NodeJS.ProcessEnv = hubEnv(hub, TOKEN)): Promise<CommandResult> {
    return runCommand(BIN.dfget, [url, "-O", join(root, out), "--socket", peer.socket, "--no-progress", "--json"], env);
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-hf-"));
    hub = await TestHub.start({ token: TOKEN });
    hub.createRepo({ id: "owner/model", private: true });
    commit1 = hub.commit("owner/model", { "weights.bin": v1, "config.json": '{"v":1}' });
    scheduler = await startScheduler();
    // At debug, so the checks that no token or signed URL is logged read everything the daemons say.
    seed = await startPeer(root, "seed", scheduler.address, ["--seed", "--log-level", "debug"]);
    peers = await Promise.all(["a", "b", "c"].map((name) => startPeer(root, name, scheduler.address, ["--log-level", "debug"])));
    await waitForHosts(scheduler.address, 4);
    // The manager has no token of its own here: the preheat names it in its headers.
    manager = await startManagerProcess(["--scheduler", scheduler.address, "--log-level", "debug"], hubEnv(hub));
  });

  after(async () => {
    await manager?.stop();
    await Promise.all([seed, ...(peers ?? [])].map((d) => d?.stop()));
    await scheduler?.stop();
    await hub?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("a pinned commit on three daemons at once: right bytes, the storage host sends them once and never sees the token", async () => {
    hub.resetStats();
    const url = `hf://owner/model/weights.bin@${commit1}`;
    const results = await Promise.all(peers.map((peer) => dfget(peer, url, `${peer.name}-pinned.bin`)));
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    for (const peer of peers) assert.equal(sha256(await readFile(join(root, `${peer.name}-pinned.bin`))), sha256(v1));
    const resolveUrl = `${hub.endpoint}/owner/model/resolve/${commit1}/weights.bin`;
    for (const result of results) assert.equal((JSON.parse(result.stdout) as DfgetJson).taskId, taskIdOf({ url: resolveUrl }));
    // The seed's one-byte probe, then every byte once.
    assert.equal(hub.stats.storageBytes, v1.byteLength + 1);
    assert.equal(hub.stats.storageAuthorizations, 0, "the token stays with the hub");
    for (const daemon of [seed, ...peers]) {
      assert.match(daemon.output(), /"level":30/, "info lines are read too, not only warnings");
      assert.doesNotMatch(daemon.output(), new RegExp(`${TOKEN}|X-Amz-Signature=[0-9a-f]`));
    }
  });

  it("a moving revision: @main is the same task while main stays, a new task with the new bytes once main moves", async () => {
    hub.resetStats();
    const same = await dfget(peers[0]!, "hf://owner/model/weights.bin", "a-main.bin");
    assert.equal(same.code, 0, same.stderr);
    const sameJson = JSON.parse(same.stdout) as DfgetJson;
    assert.equal(sameJson.taskId, taskIdOf({ url: `${hub.endpoint}/owner/model/resolve/${commit1}/weights.bin` }), "main is pinned to its commit");
    assert.equal(hub.stats.storageBytes, 0, "already in the cluster");

    const commit2 = hub.commit("owner/model", { "weights.bin": v2, "config.json": '{"v":2}' });
    const results = await Promise.all(peers.map((peer) => dfget(peer, "hf://owner/model/weights.bin@main", `${peer.name}-main2.bin`)));
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    for (const peer of peers) assert.equal(sha256(await readFile(join(root, `${peer.name}-main2.bin`))), sha256(v2), `${peer.name} got main's new bytes`);
    const ids = new Set(results.map((r) => (JSON.parse(r.stdout) as DfgetJson).taskId));
    assert.deepEqual([...ids], [taskIdOf({ url: `${hub.endpoint}/owner/model/resolve/${commit2}/weights.bin` })]);
    assert.notEqual([...ids][0], sameJson.taskId, "the old revision's task is not reused");
    assert.equal(hub.stats.storageBytes, v2.byteLength + 1, "the new revision's bytes once");

    // The old commit is still the old bytes, from the cluster.
    const old = await dfget(peers[1]!, `hf://owner/model/weights.bin@${commit1}`, "b-old.bin");
    assert.equal(old.code, 0, old.stderr);
    assert.equal(sha256(await readFile(join(root, "b-old.bin"))), sha256(v1));
    assert.equal(hub.stats.storageBytes, v2.byteLength + 1);
  });

  it("a small (non-LFS) file comes from the hub itself", async () => {
    const result = await dfget(peers[2]!, "hf://owner/model/config.json", "config.json");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(join(root, "config.json"), "utf8"), '{"v":2}');
  });

  it("a preheat of an hf:// URL warms the task a later dfget of the same revision uses: the storage host sends the file once", async () => {
    const blob = randomBytesOf(6 * MiB + 3, 43);
    const files = { "weights.bin": v2, "config.json": '{"v":2}', "extra/preheated.bin": blob };
    const commit3 = hub.commit("owner/model", files);
    hub.resetStats();
    const created = await manager.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "file", url: "hf://owner/model/extra/preheated.bin", headers: { Authorization: `Bearer ${TOKEN}` } },
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const job = await manager.waitForJob(created.body["id"] as string);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.equal(job.tasks[0]?.taskId, taskIdOf({ url: `${hub.endpoint}/owner/model/resolve/${commit3}/extra/preheated.bin` }));
    assert.equal(hub.stats.storageBytes, blob.byteLength + 1);
    assert.doesNotMatch(JSON.stringify(job), new RegExp(TOKEN));
    assert.doesNotMatch(manager.output(), new RegExp(TOKEN));

    const result = await dfget(peers[0]!, "hf://owner/model/extra/preheated.bin@main", "preheated.bin");
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as DfgetJson;
    assert.equal(report.taskId, job.tasks[0]?.taskId);
    assert.equal(report.traffic.origin, 0);
    assert.equal(sha256(await readFile(join(root, "preheated.bin"))), sha256(blob));
    assert.equal(hub.stats.storageBytes, blob.byteLength + 1, "origin once: the preheat's fetch only");
  });

  it("dfget -r of a repository: every file at a pinned commit on three daemons at once, then @main after it moved fetches only what changed", async () => {
    hub.createRepo({ id: "owner/ckpt" });
    const shard1 = randomBytesOf(4 * MiB + 3, 43);
    const shard2 = randomBytesOf(3 * MiB + 1, 44);
    const shard2b = randomBytesOf(3 * MiB + 9, 45);
    const snapshot = { "config.json": '{"layers":2}', "README.md": "# ckpt\n", "model-1.safetensors": shard1, "sub/model-2.safetensors": shard2 };
    const pinned = hub.commit("owner/ckpt", snapshot);
    hub.resetStats();
    const dirOf = (peer: Daemon): string => join(root, `${peer.name}-ckpt`);
    const run = (peer: Daemon, url: string, ...extra: string[]): Promise<CommandResult> =>
      runCommand(BIN.dfget, ["-r", url, "-O", dirOf(peer), "--socket", peer.socket, "--no-progress", "--json", ...extra], hubEnv(hub, TOKEN));
    const results = await Promise.all(peers.map((peer) => run(peer, `hf://owner/ckpt@${pinned}`)));
    for (const [i, result] of results.entries()) {
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as DirectoryJson;
      assert.equal(report.summary.downloaded, 4);
      for (const [key, content] of Object.entries(snapshot))
        assert.equal(sha256(await readFile(join(dirOf(peers[i]!), key))), sha256(Buffer.from(content)), `${peers[i]!.name}: ${key}`);
    }
    // The large files leave the storage host once each (plus the seed's probe byte), however many nodes ask.
    assert.equal(hub.stats.storageBytes, shard1.byteLength + shard2.byteLength + 2);
    assert.equal(hub.stats.storageAuthorizations, 0);

    // main moves: one shard changes. @main into the same directory fetches that shard only.
    const moved = hub.commit("owner/ckpt", { ...snapshot, "sub/model-2.safetensors": shard2b });
    hub.resetStats();
    const rerun = await run(peers[0]!, "hf://owner/ckpt");
    assert.equal(rerun.code, 0, rerun.stderr);
    const report = JSON.parse(rerun.stdout) as DirectoryJson;
    assert.deepEqual(
      report.files.filter((f) => f.status === "downloaded").map((f) => f.key),
      ["sub/model-2.safetensors"],
    );
    assert.ok(
      report.files.every((f) => f.url.endsWith(`@${moved}`)),
      "every file pinned to the commit main points at now",
    );
    assert.equal(sha256(await readFile(join(dirOf(peers[0]!), "sub/model-2.safetensors"))), sha256(shard2b));
    assert.equal(hub.stats.storageBytes, shard2b.byteLength + 1);

    // --include keeps only what it names.
    const only = await runCommand(
      BIN.dfget,
      ["-r", "hf://owner/ckpt", "-O", join(root, "configs"), "--socket", peers[1]!.socket, "--no-progress", "--json", "--include", "*.json"],
      hubEnv(hub, TOKEN),
    );
    assert.equal(only.code, 0, only.stderr);
    assert.deepEqual(await readdir(join(root, "configs")).then((names) => names.filter((n) => !n.startsWith("."))), ["config.json"]);
  });

  it("dfget -r refuses a listing that names a path outside the directory, and a revision that does not exist, writing nothing", async () => {
    hub.createRepo({ id: "owner/hostile" });
    hub.commit("owner/hostile", { "ok.txt": "fine", "sub/../../escape.bin": randomBytesOf(4096, 46) });
    const out = join(root, "hostile-dir");
    const cases: Array<[string, string, string]> = [
      ["hf://owner/hostile", "LW_ERR_UNSAFE_KEY", "sub/../../escape.bin"],
      ["hf://owner/hostile@v404", "LW_ERR_HUB_REVISION_NOT_FOUND", "v404"],
    ];
    for (const [url, code, named] of cases) {
      const result = await runCommand(BIN.dfget, ["-r", url, "-O", out, "--socket", peers[0]!.socket, "--no-progress"], hubEnv(hub, TOKEN));
      assert.notEqual(result.code, 0, url);
      assert.match(result.stderr, /^dfget: [^\n]+\n$/, `${url}: one line`);
      assert.ok(result.stderr.includes(named), `${url}: names ${named}: ${result.stderr}`);
      const json = await runCommand(BIN.dfget, ["-r", url, "-O", out, "--socket", peers[0]!.socket, "--no-progress", "--json"], hubEnv(hub, TOKEN));
      assert.equal((JSON.parse(json.stdout) as { error?: { code: string } }).error?.code, code, url);
    }
    assert.deepEqual(
      (await readdir(root)).filter((name) => name === "hostile-dir" || name === "escape.bin"),
      [],
      "no directory made and nothing written beside it",
    );
  });

  it("bad input: each a one-line error with its code and exit code, and no output file", async () => {
    const cases: Array<[string, string, NodeJS.ProcessEnv, number, string]> = [
      ["malformed URL", "hf://owner", hubEnv(hub, TOKEN), 2, "LW_ERR_BAD_URL"],
      ["missing repository", "hf://owner/nothing/weights.bin", hubEnv(hub, TOKEN), 1, "LW_ERR_HUB_REPO_NOT_FOUND"],
      ["missing file", "hf://owner/model/missing.bin", hubEnv(hub, TOKEN), 1, "LW_ERR_HUB_ENTRY_NOT_FOUND"],
      ["missing revision", "hf://owner/model/weights.bin@v404", hubEnv(hub, TOKEN), 1, "LW_ERR_HUB_REVISION_NOT_FOUND"],
      ["wrong token", "hf://owner/model/weights.bin", hubEnv(hub, "hf_wrong"), 1, "LW_ERR_HUB_AUTH"],
      ["no token for a private repository", "hf://owner/model/weights.bin", hubEnv(hub), 1, "LW_ERR_HUB_REPO_NOT_FOUND"],
    ];
    const before = await readdir(root);
    for (const [name, url, env, exitCode, code] of cases) {
      const result = await dfget(peers[0]!, url, "bad.bin", env);
      assert.equal(result.code, exitCode, `${name}: ${result.stderr}`);
      assert.match(result.stderr, /^dfget: [^\n]+\n$/, name);
      assert.equal((JSON.parse(result.stdout) as DfgetJson).error?.code, code, name);
      assert.doesNotMatch(result.stderr, new RegExp(TOKEN));
    }
    assert.deepEqual(await readdir(root), before, "nothing written");
  });
});
