// Attacks on the output a daemon writes for dfget: a farm of symlinks at
// every name the temp file could take, an in-place edit of an output that
// shares its inode with the cache, and leftovers of a crashed run. No file
// outside the output changes, and no edit reaches the next dfget or a peer.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, open, readFile, readdir, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { MIN_AUTO_PIECE_LENGTH } from "@lacewing/common";
import type { TestOrigin } from "../../helpers/origin.js";
import { randomBytesOf } from "../../helpers/origin.js";
import { fetchPieceWith, outcomeOf, uploadGrant } from "../../helpers/peer.js";
import { BIN, runCommand } from "../../helpers/processes.js";
import { startSingleNode, stopSingleNode, type SingleNode } from "../../helpers/cluster.js";

const MiB = 1024 * 1024;
const run = promisify(execFile);
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/** Files outside the output directory, with what must stay the same about each. */
async function snapshot(paths: string[]): Promise<string[]> {
  return Promise.all(
    paths.map(async (path) => {
      const s = await stat(path, { bigint: true });
      return `${path} ${sha256(await readFile(path))} ${s.mtimeNs} ${s.ctimeNs} ${s.nlink}`;
    }),
  );
}

/** A piece from the daemon's upload port, read as a cluster member would (with an upload grant). */
async function rawPiece(ports: { peer: number; upload: number }, taskId: string, number: number): Promise<{ outcome: string; body: Buffer }> {
  const grant = await uploadGrant(ports.peer, taskId);
  try {
    const answer = await fetchPieceWith(ports.upload, taskId, number, grant.token);
    return { outcome: outcomeOf(answer), body: "piece" in answer ? answer.piece : Buffer.alloc(0) };
  } finally {
    grant.close();
  }
}

describe("output placement: planted symlinks and edited outputs", () => {
  let dir: string;
  let origin: TestOrigin;
  let daemon: SingleNode["daemon"];
  // Three 4 MiB pieces.
  const file = randomBytesOf(10 * MiB + 123, 21);

  before(async () => ({ dir, origin, daemon } = await startSingleNode("lacewing-output-", { "/farm.bin": file, "/edit.bin": file })));
  after(() => stopSingleNode({ dir, origin, daemon }));

  const dfget = (url: string, out: string) => runCommand(BIN.dfget, [url, "-O", out, "--socket", daemon.socket, "--no-progress", "--json"]);

  it("a symlink farm in the output directory changes no file outside it, and the output is a regular file with the origin's bytes", async () => {
    const out = join(dir, "out");
    const elsewhere = join(dir, "elsewhere");
    await mkdir(out);
    await mkdir(elsewhere);
    const victims = ["passwd", "shadow", "authorized_keys"].map((name) => join(elsewhere, name));
    for (const victim of victims) await writeFile(victim, `the real ${victim}\n`);
    const notCreated = join(elsewhere, "cron.d-job");
    const output = join(out, "file.bin");
    const before = await snapshot(victims);

    // The output itself, every name the old scheme could pick in the next seconds, and plausible others.
    const planted = new Map<string, string>([[output, victims[0]!]]);
    const now = Date.now();
    for (let ms = now - 1_000; ms < now + 8_000; ms++) planted.set(join(out, `.file.bin.lacewing-${daemon.child.pid}-${ms}`), victims[ms % 3]!);
    for (let i = 0; i < 200; i++) planted.set(join(out, `.file.bin.lacewing-${randomBytes(16).toString("hex")}.tmp`), victims[i % 3]!);
    for (const name of [".file.bin.tmp", "file.bin.tmp", "file.bin.part", ".file.bin.lacewing.tmp"]) planted.set(join(out, name), notCreated);
    for (const [path, target] of planted) await symlink(target, path);

    const r = await dfget(origin.url("/farm.bin"), output);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(victims), before, "no file outside the output changed");
    await assert.rejects(lstat(notCreated), { code: "ENOENT" });
    assert.equal((await lstat(output)).isFile(), true);
    assert.equal(sha256(await readFile(output)), sha256(file));
    planted.delete(output);
    for (const [path, target] of planted) assert.equal(await readlink(path), target, "the planted links are not followed, and not stale yet");
  });

  it("an output edited in place as root, mtime set back, never changes what the next dfget or a peer gets from this node", async () => {
    const first = join(dir, "first.bin");
    const r1 = await dfget(origin.url("/edit.bin"), first);
    assert.equal(r1.code, 0, r1.stderr);
    const { taskId } = JSON.parse(r1.stdout) as { taskId: string };

    const reference = join(dir, "mtime-reference");
    await run("touch", ["-r", first, reference]);
    const edit = await open(first, "r+");
    await edit.write(Buffer.from("EDITED BY SOMEONE"), 0, 17, MIN_AUTO_PIECE_LENGTH + 1_000);
    await edit.close();
    await run("touch", ["-m", "-r", reference, first]);
    assert.equal((await stat(first, { bigint: true })).mtimeNs, (await stat(reference, { bigint: true })).mtimeNs, "mtime restored to the nanosecond");
    const edited = await readFile(first);
    const piece1 = file.subarray(MIN_AUTO_PIECE_LENGTH, 2 * MIN_AUTO_PIECE_LENGTH);

    const during = await rawPiece(daemon.ports, taskId, 1);
    assert.ok(during.outcome !== "piece" || during.body.equals(piece1), "a peer got the edited bytes");

    origin.bytesSent = 0;
    const second = join(dir, "second.bin");
    const r2 = await dfget(origin.url("/edit.bin"), second);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(sha256(await readFile(second)), sha256(file));
    assert.equal(origin.bytesSent, 1 + MIN_AUTO_PIECE_LENGTH, "the probe byte and the edited piece, fetched again");

    const after = await rawPiece(daemon.ports, taskId, 1);
    assert.equal(after.outcome, "piece");
    assert.ok(after.body.equals(piece1), "a peer gets the origin's bytes");
    assert.ok((await readFile(first)).equals(edited), "the edited file is left to its owner");
    assert.notEqual((await stat(first)).ino, (await stat(second)).ino);
  });
});

describe("output placement: leftovers of a crashed run", () => {
  let dir: string;
  let origin: TestOrigin;
  let daemon: SingleNode["daemon"];

  // ctime cannot be set back, so leftovers planted now count as stale only with no minimum age.
  before(
    async () => ({ dir, origin, daemon } = await startSingleNode("lacewing-leftover-", { "/file.bin": randomBytesOf(MiB, 22) }, ["--output-temp-ttl", "0s"])),
  );
  after(() => stopSingleNode({ dir, origin, daemon }));

  it("removes this output's stale temp files, unlinking a symlink without touching its target, and nothing else", async () => {
    const out = join(dir, "out");
    await mkdir(out);
    const victim = join(dir, "victim");
    await writeFile(victim, "must stay as it is");
    const leftovers = [`.file.bin.lacewing-${randomBytes(16).toString("hex")}.tmp`, ".file.bin.lacewing-4242-1700000000000"];
    await writeFile(join(out, leftovers[0]!), "half a file");
    await writeFile(join(out, leftovers[1]!), "a leftover of an older version");
    const link = `.file.bin.lacewing-${randomBytes(16).toString("hex")}.tmp`;
    await symlink(victim, join(out, link));
    const others = [".file.bin.lacewing-keep", `.other.bin.lacewing-${randomBytes(16).toString("hex")}.tmp`, "file.bin.bak"];
    for (const name of others) await writeFile(join(out, name), "not a temp file of file.bin");

    const r = await runCommand(BIN.dfget, [origin.url("/file.bin"), "-O", join(out, "file.bin"), "--socket", daemon.socket, "--no-progress"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await readdir(out)).sort(), [...others, "file.bin"].sort());
    assert.equal(await readFile(victim, "utf8"), "must stay as it is");
  });
});
