import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestOrigin } from "../helpers/origin.js";
import { randomBytesOf } from "../helpers/origin.js";
import { BIN, runCommand } from "../helpers/processes.js";
import { startSingleNode, stopSingleNode, type SingleNode } from "../helpers/cluster.js";

const MiB = 1024 * 1024;

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

describe("single node: dfget → dfdaemon → origin", () => {
  let dir: string;
  let origin: TestOrigin;
  let daemon: SingleNode["daemon"];
  const big = randomBytesOf(200 * MiB, 7);
  const small = randomBytesOf(10 * MiB + 123, 9);
  const files: Record<string, Buffer> = { "/big.bin": big, "/small.bin": small };
  // One URL per case, so none finds another's task in the cache: each passes alone (--test-name-pattern) as in order.
  for (const name of ["cached", "retry", "reset", "norange", "liar", "digest", "timeout"]) files[`/${name}.bin`] = small;
  // OCI blob URLs: one whose bytes are its digest's, one whose bytes are not (a lying registry).
  const blobOf = (bytes: Buffer): string => `/v2/team/app/blobs/sha256:${sha256(bytes)}`;
  files[blobOf(small)] = small;
  files[blobOf(big)] = small;

  before(async () => ({ dir, origin, daemon } = await startSingleNode("lacewing-e2e-", files)));
  after(() => stopSingleNode({ dir, origin, daemon }));

  const dfget = (url: string, out: string, ...extra: string[]) => runCommand(BIN.dfget, [url, "-O", out, "--socket", daemon.socket, "--no-progress", ...extra]);

  it("20 concurrent dfgets of one 200 MB URL all get the right bytes while the origin sends them once", async () => {
    origin.bytesSent = 0;
    const outs = Array.from({ length: 20 }, (_, i) => join(dir, `big-${i}.bin`));
    const results = await Promise.all(outs.map((out) => dfget(origin.url("/big.bin"), out)));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const expected = sha256(big);
    for (const out of outs) assert.equal(sha256(await readFile(out)), expected);
    assert.equal(origin.bytesSent, big.byteLength + 1, "one probe byte plus the content, once");
  });

  it("a second download of a cached task is served from the cache with --json reporting it", async () => {
    const first = await dfget(origin.url("/cached.bin"), join(dir, "cached.bin"));
    assert.equal(first.code, 0, first.stderr);
    origin.bytesSent = 0;
    const out = join(dir, "cached-again.bin");
    const r = await dfget(origin.url("/cached.bin"), out, "--json");
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { ok: boolean; traffic: { cache: number; origin: number } };
    assert.equal(result.ok, true);
    assert.equal(result.traffic.cache, small.byteLength);
    assert.equal(result.traffic.origin, 0);
    assert.equal(sha256(await readFile(out)), sha256(small));
    assert.equal(origin.bytesSent, 0);
  });

  it("verifies an OCI blob URL against the digest it names, even without --digest", async () => {
    const good = await dfget(origin.url(blobOf(small)), join(dir, "blob-good.bin"));
    assert.equal(good.code, 0, good.stderr);
    const out = join(dir, "blob-lie.bin");
    const lie = await dfget(origin.url(blobOf(big)), out);
    assert.equal(lie.code, 5, lie.stderr);
    assert.match(lie.stderr, /digest mismatch: expected sha256:/);
    await assert.rejects(stat(out));
    const contradicted = await dfget(origin.url(blobOf(small)), join(dir, "blob-other.bin"), "--digest", `sha256:${"1".repeat(64)}`);
    assert.notEqual(contradicted.code, 0);
    assert.match(contradicted.stderr, /contradicts the blob digest/);
  });

  it("verifies a correct --digest and rejects a wrong one without leaving an output file", async () => {
    const good = join(dir, "digest-good.bin");
    const ok = await dfget(origin.url("/small.bin"), good, "--digest", `sha256:${sha256(small)}`);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = join(dir, "digest-bad.bin");
    const r = await dfget(origin.url("/digest.bin"), bad, "--digest", `sha256:${"0".repeat(64)}`);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /digest mismatch/);
    await assert.rejects(stat(bad));
  });

  it("retries an origin that answers 500 before succeeding", async () => {
    origin.requests = 0;
    origin.faults = { failFirst: 2 };
    const out = join(dir, "retry.bin");
    const r = await dfget(origin.url("/retry.bin"), out);
    origin.faults = {};
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(await readFile(out)), sha256(small));
  });

  it("refetches a piece whose connection was reset midway", async () => {
    origin.requests = 0;
    origin.faults = { resetOnRequest: 2 };
    const out = join(dir, "reset.bin");
    const r = await dfget(origin.url("/reset.bin"), out);
    origin.faults = {};
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(await readFile(out)), sha256(small));
  });

  it("downloads from an origin that ignores Range with one sequential stream", async () => {
    origin.faults = { ignoreRange: true };
    origin.bytesSent = 0;
    const out = join(dir, "norange.bin");
    const r = await dfget(origin.url("/norange.bin"), out);
    origin.faults = {};
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(await readFile(out)), sha256(small));
    assert.equal(origin.bytesSent, small.byteLength);
  });

  it("fails clearly on a Content-Length that lies, leaving no output file", async () => {
    origin.faults = { lieContentLength: small.byteLength + 4096 };
    const out = join(dir, "liar.bin");
    const r = await dfget(origin.url("/liar.bin"), out);
    origin.faults = {};
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /origin|connection/);
    assert.equal(r.stderr.trim().split("\n").length, 1, "one line on stderr");
    await assert.rejects(stat(out));
  });

  it("gives up at --timeout with exit code 4 when the origin stalls", async () => {
    origin.faults = { stall: true };
    const out = join(dir, "timeout.bin");
    const r = await dfget(origin.url("/timeout.bin"), out, "--timeout", "1s");
    origin.faults = {};
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /time/i);
    await assert.rejects(stat(out));
  });

  it("reports an origin 404 with exit code 1 and the status", async () => {
    const r = await dfget(origin.url("/missing.bin"), join(dir, "missing.bin"));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /404/);
  });

  it("rejects a bad URL with exit code 2", async () => {
    const r = await dfget("ftp://example/file", join(dir, "x.bin"));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /URL|scheme/i);
  });

  it("says how to start a daemon when none is running (exit 3)", async () => {
    const r = await runCommand(BIN.dfget, [origin.url("/small.bin"), "-O", join(dir, "nodaemon.bin"), "--socket", join(dir, "nope.sock"), "--no-progress"]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /dfdaemon/);
  });

  it("refuses an output directory it cannot write to (exit 6)", async () => {
    const r = await dfget(origin.url("/small.bin"), join(dir, "no-such-dir", "x.bin"));
    assert.equal(r.code, 6, r.stderr);
  });
});
