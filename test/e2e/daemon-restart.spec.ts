import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { startScheduler } from "../helpers/cluster.js";
import { BIN, runCommand, startDaemon } from "../helpers/processes.js";
import { waitUntil } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const ORIGIN_CONCURRENCY = 8;

/**
 * What these specs need of an origin, so the same restarts run against every
 * kind of source dfget reads: plain HTTP here; an s3:// or hf:// origin is
 * one more entry in ORIGINS.
 */
interface ResumeOrigin {
  /** Serves `bytes` as object `key` (a new version each time, with new validators) and returns the URL dfget is given. */
  put(key: string, bytes: Buffer): Promise<string>;
  /** Body bytes the origin sent since it started, whatever the request. */
  bytesSent(): number;
  /** Body bytes per second over all responses, 0 for unlimited: slows the origin so a restart lands mid-way. */
  pace(bytesPerSecond: number): void;
  /** Body bytes of the daemon's probe of an object: what a resume costs beyond the missing pieces. */
  readonly probeBytes: number;
  /** Arguments dfget needs besides the URL (credentials as -H, …). */
  readonly dfgetArgs: string[];
  /** Environment dfget needs (the caller's AWS_* for s3://, …). */
  readonly dfgetEnv: Record<string, string>;
  close(): Promise<void>;
}

async function httpOrigin(): Promise<ResumeOrigin> {
  const origin = new TestOrigin({});
  origin.validators = true;
  await origin.start();
  return {
    put: async (key, bytes) => {
      origin.replace(`/${key}`, bytes);
      return origin.url(`/${key}`);
    },
    bytesSent: () => origin.bytesSent,
    pace: (bytesPerSecond) => (origin.bytesPerSecond = bytesPerSecond),
    probeBytes: 1,
    dfgetArgs: [],
    dfgetEnv: {},
    close: () => origin.close(),
  };
}

/**
 * The origins every case runs against; `big` also runs the 2 GiB case, whose
 * whole cost each origin would add to CI again (s3rver would store the 2 GiB
 * on disk beside the daemon's copy). An s3:// entry wraps TestS3Origin:
 * put() through its put(), bytesSent() its bytesServed, pace() by delaying
 * each object GET (beforeObjectGet), dfgetEnv its env().
 */
const ORIGINS: Record<string, { start: () => Promise<ResumeOrigin>; big: boolean }> = {
  http: { start: httpOrigin, big: true },
};

interface JournaledPiece {
  number: number;
  length: number;
}

/** The journal as the restarted daemon will find it (a torn last line left out). */
async function journal(taskDir: string): Promise<JournaledPiece[]> {
  const text = await readFile(join(taskDir, "pieces.log"), "utf8").catch(() => "");
  const byNumber = new Map<number, JournaledPiece>();
  for (const line of text.split("\n")) if (line.endsWith("}")) byNumber.set((JSON.parse(line) as JournaledPiece).number, JSON.parse(line) as JournaledPiece);
  return [...byNumber.values()];
}

/** Digests, not buffers, are compared: a failed deepEqual of 64 MiB buffers renders a diff that exhausts the heap. */
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

interface DfgetJson {
  ok: boolean;
  contentLength: number;
  reconnects: number;
  traffic: { origin: number; peers: number; cache: number };
}

for (const [kind, { start: makeOrigin, big }] of Object.entries(ORIGINS)) {
  describe(`a dfget of a ${kind} URL survives its daemon being killed and started again`, () => {
    let dir: string;
    let origin: ResumeOrigin;
    let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
    const daemonArgs = ["--origin-concurrency", String(ORIGIN_CONCURRENCY)];

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "lacewing-daemon-restart-"));
      origin = await makeOrigin();
    });

    after(async () => {
      await daemon?.stop();
      await origin?.close();
      await rm(dir, { recursive: true, force: true });
    });

    /**
     * Starts a daemon with `args` and a real dfget, stops the daemon with
     * `signal` once `killAfter` pieces are journaled, runs `meanwhile` and
     * starts a daemon again on the same data directory and socket; resolves
     * with dfget's outcome, what the origin had sent when the daemon died and
     * what the dead daemon left on disk.
     */
    async function restartDuring(
      url: string,
      out: string,
      killAfter: number,
      meanwhile: () => Promise<void> | void = () => undefined,
      args = daemonArgs,
      signal: NodeJS.Signals = "SIGKILL",
    ) {
      // Each case starts from an empty cache: only one task is ever being journaled.
      await daemon?.stop();
      const tasksDir = join(dir, "data", "tasks");
      await rm(tasksDir, { recursive: true, force: true });
      daemon = await startDaemon(dir, args);
      const run = runCommand(
        BIN.dfget,
        [url, "-O", out, "--socket", daemon.socket, "--no-progress", "--json", "--reconnect-timeout", "2m", ...origin.dfgetArgs],
        origin.dfgetEnv,
      );
      let taskDir = "";
      await waitUntil(
        `${killAfter} pieces were journaled`,
        async () => {
          const [name] = await readdir(tasksDir).catch(() => []);
          if (name === undefined || (await journal(join(tasksDir, name))).length < killAfter) return false;
          taskDir = join(tasksDir, name);
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 20 },
      );
      await daemon.stop(signal);
      const sentAtKill = origin.bytesSent();
      const kept = await journal(taskDir);
      const meta = JSON.parse(await readFile(join(taskDir, "meta.json"), "utf8")) as {
        pieceLength: number;
        contentLength: number;
        validators?: { etag?: string; lastModified?: string };
      };
      await meanwhile();
      daemon = await startDaemon(dir, args);
      const result = await run;
      const status = result.code === 0 ? undefined : await runCommand(BIN.dfdaemon, ["status", "--json", "--socket", daemon.socket]);
      assert.equal(result.code, 0, `${result.stderr}\nthe restarted daemon's log:\n${daemon.output()}\nstatus: ${status?.stdout ?? ""}`);
      const summary = JSON.parse(result.stdout) as DfgetJson;
      return { summary, sentAtKill, kept, keptBytes: kept.reduce((sum, p) => sum + p.length, 0), meta };
    }

    if (big)
      it("2 GiB: the output is the origin's, and the origin sends it once plus at most the pieces in flight at the kill", async (t) => {
        const size = 2 * GiB;
        let at = Date.now();
        const content = randomBytesOf(size, 21);
        // One update takes at most 2 GiB - 1.
        const hash = createHash("sha256");
        for (let offset = 0; offset < size; offset += 256 * MiB) hash.update(content.subarray(offset, offset + 256 * MiB));
        const expected = hash.digest("hex");
        const url = await origin.put("big.bin", content);
        t.diagnostic(`made and hashed 2 GiB in ${Date.now() - at} ms`);
        const out = join(dir, "big.bin");
        const sentBefore = origin.bytesSent();
        at = Date.now();
        // 256 pieces of 8 MiB; killed a quarter of the way in.
        const { summary, sentAtKill, kept, keptBytes, meta } = await restartDuring(url, out, 64);
        t.diagnostic(`dfget of 2 GiB with a daemon restart took ${Date.now() - at} ms`);
        const total = meta.contentLength / meta.pieceLength;
        assert.equal(meta.contentLength, size, "the unfinished task's meta kept the length");
        assert.ok(meta.validators?.etag !== undefined && meta.validators.lastModified !== undefined, "and the origin's validators");
        assert.ok(kept.length < total, "killed before the end");

        assert.equal(await sha256Of(out), expected, "byte-identical to the origin's");
        assert.ok(summary.reconnects >= 1, "dfget reconnected");
        assert.equal(summary.contentLength, size);
        assert.deepEqual(summary.traffic, { origin: size - keptBytes, peers: 0, cache: keptBytes }, "what the restarted daemon had kept counts as cache");

        const before = sentAtKill - sentBefore;
        const after = origin.bytesSent() - sentAtKill;
        assert.equal(after, size - keptBytes + origin.probeBytes, "after the restart: the probe and exactly the pieces not kept");
        const lost = before - origin.probeBytes - keptBytes;
        assert.ok(lost >= 0 && lost <= ORIGIN_CONCURRENCY * meta.pieceLength, `lost ${lost} bytes in flight, at most ${ORIGIN_CONCURRENCY} pieces`);
        assert.ok(before + after <= size + ORIGIN_CONCURRENCY * meta.pieceLength + 2 * origin.probeBytes, "the file once plus the pieces in flight");
        await rm(out, { force: true });
        await origin.put("big.bin", Buffer.alloc(0));
      });

    it("through a scheduler: the restarted peer registers with the pieces it kept and fetches only the others", async () => {
      const scheduler = await startScheduler();
      try {
        const size = 64 * MiB;
        const content = randomBytesOf(size, 41);
        const url = await origin.put("p2p.bin", content);
        const out = join(dir, "p2p.bin");
        origin.pace(16 * MiB);
        let result: Awaited<ReturnType<typeof restartDuring>>;
        try {
          result = await restartDuring(url, out, 8, () => origin.pace(0), [...daemonArgs, "--scheduler", scheduler.address]);
        } finally {
          origin.pace(0);
        }
        const { summary, sentAtKill, keptBytes } = result;
        assert.equal(await sha256Of(out), sha256(content), "byte-identical to the origin's");
        assert.ok(summary.reconnects >= 1, "dfget reconnected");
        // The restarted daemon's download registered with the scheduler, which (no other peer) sent it back to source.
        await daemon!.waitForLines(/going back to source/, { timeoutMs: 5_000 });
        assert.deepEqual(summary.traffic, { origin: size - keptBytes, peers: 0, cache: keptBytes });
        assert.equal(origin.bytesSent() - sentAtKill, size - keptBytes + origin.probeBytes, "the probe and exactly the pieces not kept");
        await rm(out, { force: true });
      } finally {
        await daemon?.stop();
        daemon = undefined;
        await scheduler.stop();
      }
    });

    it("a daemon stopped gracefully (SIGTERM, as an upgrade does) is waited for just the same", async () => {
      const size = 64 * MiB;
      const content = randomBytesOf(size, 51);
      const url = await origin.put("graceful.bin", content);
      const out = join(dir, "graceful.bin");
      origin.pace(16 * MiB);
      let result: Awaited<ReturnType<typeof restartDuring>>;
      try {
        result = await restartDuring(url, out, 8, () => origin.pace(0), daemonArgs, "SIGTERM");
      } finally {
        origin.pace(0);
      }
      assert.equal(await sha256Of(out), sha256(content), "byte-identical to the origin's");
      assert.ok(result.summary.reconnects >= 1, "dfget reconnected");
      assert.equal(result.summary.traffic.origin + result.summary.traffic.cache, size);
      await rm(out, { force: true });
    });

    it("an object changed while the daemon was down is fetched again from scratch, never mixed with the old pieces", async () => {
      const size = 64 * MiB;
      const oldContent = randomBytesOf(size, 31);
      const newContent = randomBytesOf(size, 32);
      const url = await origin.put("changing.bin", oldContent);
      const out = join(dir, "changing.bin");
      // 64 pieces of 1 MiB at 16 MiB/s: a few seconds, so the kill lands early.
      origin.pace(16 * MiB);
      const sentBefore = origin.bytesSent();
      let summary: DfgetJson;
      let sentAtKill: number;
      try {
        ({ summary, sentAtKill } = await restartDuring(url, out, 8, async () => {
          // Same length: only the validators can tell the versions apart.
          await origin.put("changing.bin", newContent);
          origin.pace(0);
        }));
      } finally {
        origin.pace(0);
      }
      assert.ok(sentAtKill - sentBefore < size, "killed mid-way");
      assert.equal(await sha256Of(out), sha256(newContent), "the new object, whole");
      assert.deepEqual(summary.traffic, { origin: size, peers: 0, cache: 0 }, "no old piece was reused");
      assert.equal(origin.bytesSent() - sentAtKill, size + origin.probeBytes, "the whole new object from the origin");
      await rm(out, { force: true });
    });
  });
}
