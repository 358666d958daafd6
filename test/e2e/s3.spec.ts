import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { access, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { startManagerProcess, type ManagerProcess } from "../helpers/manager.js";
import { randomBytesOf } from "../helpers/origin.js";
import { BIN, runCommand, startDaemon, type CommandResult } from "../helpers/processes.js";
import { TestS3Origin } from "../helpers/s3-origin.js";

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

interface DfgetJson {
  ok: boolean;
  taskId: string;
  traffic: { origin: number; peers: number; cache: number };
  error?: { code: string; message: string };
}

interface DirectoryJson {
  ok: boolean;
  files: Array<{ key: string; status: string; traffic: { origin: number; peers: number; cache: number } }>;
  summary: { downloaded: number; unchanged: number; traffic: { origin: number; peers: number; cache: number } };
}

/** Every file under `dir` smaller than 1 MiB (metadata, journals, not piece data) that contains `needle`. */
async function filesHolding(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await stat(path)).size < MiB && (await readFile(path, "latin1")).includes(needle)) found.push(path);
  }
  return found;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

describe("s3:// on loopback: s3rver (SigV4 checked) + scheduler + seed peer + 3 dfdaemons + manager", () => {
  let root: string;
  let origin: TestS3Origin;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let peers: Daemon[];
  let manager: ManagerProcess | undefined;
  const first = randomBytesOf(20 * MiB + 777, 51);
  const overwritten = randomBytesOf(12 * MiB + 5, 52);

  /** dfget with the caller's AWS_* environment: only dfget holds the key; the daemons have none of their own. */
  function dfgetS3(peer: Daemon, url: string, out: string, env: Record<string, string> = origin.env(), ...extra: string[]): Promise<CommandResult> {
    return runCommand(BIN.dfget, [url, "-O", out, "--socket", peer.socket, "--no-progress", "--json", ...extra], env);
  }

  /** Everything every process wrote that the tests can see: the secret must be in none of it. */
  function allOutput(): string {
    return [seed, ...peers].map((d) => d.output()).join("\n") + (manager?.output() ?? "");
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-s3-e2e-"));
    origin = new TestS3Origin(["models"]);
    await origin.start();
    await origin.put("models", "llm/weights.bin", first);
    scheduler = await startScheduler();
    // Debug logs on the seed and one peer: the lines that could leak a credential are all written.
    seed = await startPeer(root, "seed", scheduler.address, ["--seed", "--log-level", "debug"]);
    peers = await Promise.all(["a", "b", "c"].map((name) => startPeer(root, name, scheduler.address, name === "a" ? ["--log-level", "debug"] : [])));
    await waitForHosts(scheduler.address, 4);
  });

  after(async () => {
    await manager?.stop();
    await Promise.all([seed, ...(peers ?? [])].map((d) => d?.stop()));
    await scheduler?.stop();
    await origin?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("three concurrent dfget of one object: right bytes, the bucket serves them once (through the seed, signed by the caller's key)", async () => {
    origin.bytesServed = 0;
    const results = await Promise.all(peers.map((peer) => dfgetS3(peer, "s3://models/llm/weights.bin", join(root, `${peer.name}.out`))));
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "", "nothing on dfget's stderr (no SDK warning either)");
    }
    for (const peer of peers) assert.equal(sha256(await readFile(join(root, `${peer.name}.out`))), sha256(first), `${peer.name}'s output`);
    // The seed's probe byte plus the content, however many peers asked.
    assert.equal(origin.bytesServed, first.byteLength + 1);
    const reports = results.map((r) => JSON.parse(r.stdout) as DfgetJson);
    assert.equal(new Set(reports.map((r) => r.taskId)).size, 1, "one task");
    for (const report of reports) assert.equal(report.traffic.origin, 0, "the seed fetched, no peer went to the bucket");
    assert.ok(origin.verified.query > 0, "pieces were read with presigned GETs the front verified");
    assert.ok(origin.verified.header > 0, "the ETag was pinned with a header-signed HeadObject");
    const logs = allOutput();
    assert.ok(!logs.includes(origin.secretAccessKey), "no process logged the secret");
    assert.ok(!logs.includes("NodeVersionSupportWarning"), "the SDK's Node version warning reached no log");
    assert.doesNotMatch(logs, /X-Amz-Signature=[0-9a-f]{64}/, "no presigned URL in the logs");
    for (const daemon of [seed, ...peers]) assert.deepEqual(await filesHolding(daemon.dir, origin.secretAccessKey), [], `${daemon.name} stored no credential`);
  });

  it("an object overwritten under the same key is a new task: the new bytes arrive, never the cached ones", async () => {
    const before = JSON.parse((await dfgetS3(peers[0]!, "s3://models/llm/weights.bin", join(root, "again.out"))).stdout) as DfgetJson;
    assert.equal(before.traffic.cache, first.byteLength, "unchanged: served from the cache");
    await origin.put("models", "llm/weights.bin", overwritten);
    origin.bytesServed = 0;
    const result = await dfgetS3(peers[1]!, "s3://models/llm/weights.bin", join(root, "new.out"));
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as DfgetJson;
    assert.notEqual(report.taskId, before.taskId, "a new task id");
    assert.equal(sha256(await readFile(join(root, "new.out"))), sha256(overwritten));
    assert.equal(origin.bytesServed, overwritten.byteLength + 1, "the new object left the bucket once");
    // The node that holds the old task gets the new object too.
    const onA = await dfgetS3(peers[0]!, "s3://models/llm/weights.bin", join(root, "new-a.out"));
    assert.equal(onA.code, 0, onA.stderr);
    assert.equal(sha256(await readFile(join(root, "new-a.out"))), sha256(overwritten));
    assert.equal(origin.bytesServed, overwritten.byteLength + 1, "and only once");
  });

  it("a preheat of s3://bucket/key warms the task a later dfget of it uses: the bucket serves it once", async () => {
    const blob = randomBytesOf(8 * MiB + 3, 53);
    await origin.put("models", "llm/preheat.bin", blob);
    // The manager holds the key (its own AWS_*), and the seed peer none.
    manager = await startManagerProcess(["--scheduler", scheduler.address], origin.env());
    origin.bytesServed = 0;
    const created = await manager.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: "s3://models/llm/preheat.bin" } });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const job = await manager.waitForJob(created.body["id"] as string);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.equal(job.tasks[0]!.url, "s3://models/llm/preheat.bin");
    assert.equal(origin.bytesServed, blob.byteLength + 1);
    assert.ok(!JSON.stringify(job).includes(origin.secretAccessKey), "the job view holds no credential");

    const result = await dfgetS3(peers[2]!, "s3://models/llm/preheat.bin", join(root, "preheated.out"));
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as DfgetJson;
    assert.equal(report.taskId, job.tasks[0]!.taskId, "the preheated task");
    assert.equal(report.traffic.origin, 0);
    assert.equal(sha256(await readFile(join(root, "preheated.out"))), sha256(blob));
    assert.equal(origin.bytesServed, blob.byteLength + 1, "nothing more left the bucket");

    const missing = await manager.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: "s3://models/llm/none.bin" } });
    const failed = await manager.waitForJob(missing.body["id"] as string);
    assert.equal(failed.state, "failed");
    assert.match(failed.error, /no object llm\/none.bin in bucket models/);
    const malformed = await manager.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: "s3://models" } });
    assert.equal(malformed.status, 400);
    assert.match(JSON.stringify(malformed.body), /the key is missing/);
    const logs = allOutput();
    assert.ok(!logs.includes(origin.secretAccessKey), "no process logged the secret");
    assert.ok(!logs.includes("NodeVersionSupportWarning"), "the SDK's Node version warning reached no log");
  });

  it("takes the keys of AWS_PROFILE's profile from the shared credentials file", async () => {
    await origin.put("models", "llm/profile.bin", randomBytesOf(1 * MiB, 57));
    const credentials = join(root, "aws-credentials");
    await writeFile(
      credentials,
      `[other]\naws_access_key_id = NOPE\naws_secret_access_key = nope\n[ci]\naws_access_key_id = ${origin.accessKeyId}\naws_secret_access_key = ${origin.secretAccessKey}\n`,
    );
    const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...settings } = origin.env();
    const env = { ...settings, AWS_PROFILE: "ci", AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CONFIG_FILE: join(root, "aws-config") };
    const result = await dfgetS3(peers[1]!, "s3://models/llm/profile.bin", join(root, "profile.out"), env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "", "nothing on dfget's stderr (the SDK's providers warn nothing either)");
  });

  it("an object overwritten in the middle of a download fails it clearly (LW_ERR_OBJECT_CHANGED), mixes nothing and writes nothing", async () => {
    const key = "llm/changing.bin";
    await origin.put("models", key, randomBytesOf(8 * MiB, 54));
    // The probe and two pieces of the old object, then the object changes under the download.
    let reads = 0;
    origin.beforeObjectGet = async (path) => {
      if (path === `/models/${key}` && ++reads === 3) await origin.put("models", key, randomBytesOf(8 * MiB, 55));
    };
    try {
      const out = join(root, "changing.out");
      const result = await dfgetS3(peers[2]!, `s3://models/${key}`, out, origin.env(), "--piece-length", "1MiB");
      assert.equal(result.code, 1, result.stderr);
      const report = JSON.parse(result.stdout) as DfgetJson;
      assert.equal(report.error?.code, "LW_ERR_OBJECT_CHANGED", result.stdout);
      assert.match(report.error?.message ?? "", /was overwritten during the download/);
      assert.equal(await exists(out), false);
    } finally {
      origin.beforeObjectGet = undefined;
    }
  });

  it("a caller without credentials leaves them to the daemon's own AWS chain", async () => {
    const dir = join(root, "own-chain");
    const own = await startDaemon(dir, [], { env: origin.env() });
    try {
      await origin.put("models", "llm/own.bin", randomBytesOf(2 * MiB, 56));
      // No AWS_* at all on dfget's side: the download carries empty credentials.
      const result = await runCommand(BIN.dfget, ["s3://models/llm/own.bin", "-O", join(root, "own.out"), "--socket", own.socket, "--no-progress", "--json"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal((JSON.parse(result.stdout) as DfgetJson).traffic.origin, 2 * MiB);
      assert.ok(!own.output().includes("NodeVersionSupportWarning"));
    } finally {
      await own.stop();
    }
  });

  it("dfget -r of a prefix on three nodes at once: every file, the bucket serves each once; a re-run fetches only the changed object", async () => {
    const files: Record<string, Buffer> = {
      "config.json": Buffer.from('{"layers": 2}'),
      "model-00001-of-00002.safetensors": randomBytesOf(6 * MiB + 11, 54),
      "model-00002-of-00002.safetensors": randomBytesOf(5 * MiB + 7, 55),
      "tokenizer/vocab.txt": randomBytesOf(300_000, 56),
    };
    for (const [key, bytes] of Object.entries(files)) await origin.put("models", `ckpt/${key}`, bytes);
    origin.bytesServed = 0;
    const total = Object.values(files).reduce((n, b) => n + b.byteLength, 0);
    const dirOf = (peer: Daemon): string => join(root, `${peer.name}-ckpt`);
    const results = await Promise.all(
      peers.map((peer) =>
        runCommand(
          BIN.dfget,
          ["-r", "s3://models/ckpt/", "-O", dirOf(peer), "--socket", peer.socket, "--no-progress", "--json", "--max-concurrent", "2"],
          origin.env(),
        ),
      ),
    );
    for (const [i, result] of results.entries()) {
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as DirectoryJson;
      assert.equal(report.summary.downloaded, 4);
      assert.deepEqual(report.files.map((f) => f.key).sort(), Object.keys(files).sort());
      for (const [key, bytes] of Object.entries(files)) assert.equal(sha256(await readFile(join(dirOf(peers[i]!), key))), sha256(bytes), key);
    }
    // Each object once (plus the seed's probe byte per object; an empty-range probe of a small object reads one byte too).
    assert.ok(origin.bytesServed >= total && origin.bytesServed <= total + 4, `bucket bytes ${origin.bytesServed} for ${total}`);
    const summed = results.map((r) => (JSON.parse(r.stdout) as DirectoryJson).summary.traffic.origin).reduce((a, b) => a + b, 0);
    assert.equal(summed, 0, "no peer went to the bucket: the seed fetched");

    // One object overwritten: a re-run on one node fetches that one and leaves the rest.
    const changed = randomBytesOf(5 * MiB + 9, 57);
    await origin.put("models", "ckpt/model-00002-of-00002.safetensors", changed);
    origin.bytesServed = 0;
    const rerun = await runCommand(
      BIN.dfget,
      ["-r", "s3://models/ckpt/", "-O", dirOf(peers[0]!), "--socket", peers[0]!.socket, "--no-progress", "--json"],
      origin.env(),
    );
    assert.equal(rerun.code, 0, rerun.stderr);
    const report = JSON.parse(rerun.stdout) as DirectoryJson;
    assert.deepEqual(
      report.files.filter((f) => f.status === "downloaded").map((f) => f.key),
      ["model-00002-of-00002.safetensors"],
    );
    assert.equal(report.summary.unchanged, 3);
    assert.equal(sha256(await readFile(join(dirOf(peers[0]!), "model-00002-of-00002.safetensors"))), sha256(changed));
    assert.ok(origin.bytesServed <= changed.byteLength + 1, "only the changed object left the bucket");
  });

  it("dfget -r of a missing bucket or an empty prefix says so in one line and creates nothing", async () => {
    for (const url of ["s3://nobucket/prefix/", "s3://models/no-such-prefix/"]) {
      const out = join(root, "absent-dir");
      const result = await runCommand(BIN.dfget, ["-r", url, "-O", out, "--socket", peers[0]!.socket, "--no-progress"], origin.env());
      assert.notEqual(result.code, 0, `${url}: ${result.stdout}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.equal(await exists(out), false, `${url}: no directory made`);
    }
  });

  it("bad input fails with one line and the right exit code, and writes nothing", async () => {
    const cases: Array<{ url: string; env?: Record<string, string>; exit: number; code: string; message: RegExp }> = [
      { url: "s3://models", exit: 2, code: "LW_ERR_BAD_URL", message: /the key is missing/ },
      { url: "s3://Not_A_Bucket/x", exit: 2, code: "LW_ERR_BAD_URL", message: /is not a bucket name/ },
      { url: "s3://nobucket/x.bin", exit: 1, code: "LW_ERR_OBJECT_NOT_FOUND", message: /bucket nobucket does not exist/ },
      { url: "s3://models/llm/absent.bin", exit: 1, code: "LW_ERR_OBJECT_NOT_FOUND", message: /no object llm\/absent.bin in bucket models/ },
      {
        url: "s3://models/llm/weights.bin",
        env: origin.env({ AWS_SECRET_ACCESS_KEY: "not-the-secret" }),
        exit: 1,
        code: "LW_ERR_OBJECT_ACCESS_DENIED",
        message: /refused the credentials/,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const out = join(root, `bad-${i}.out`);
      const result = await runCommand(BIN.dfget, [c.url, "-O", out, "--socket", peers[0]!.socket, "--no-progress"], c.env ?? origin.env());
      assert.equal(result.code, c.exit, `${c.url}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, `${c.url}: one line: ${result.stderr}`);
      assert.match(result.stderr, c.message);
      const json = await runCommand(BIN.dfget, [c.url, "-O", out, "--socket", peers[0]!.socket, "--no-progress", "--json"], c.env ?? origin.env());
      assert.equal((JSON.parse(json.stdout) as DfgetJson).error?.code, c.code);
      assert.equal(await exists(out), false, `${c.url}: no output`);
    }
    assert.deepEqual(
      (await readdir(root)).filter((name) => name.startsWith("bad-")),
      [],
      "no temporary file beside the outputs either",
    );
  });
});
