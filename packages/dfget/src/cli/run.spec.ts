import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { FAKE_CONTENT, FakeDfdaemon } from "../testing/fake-dfdaemon.js";
import { ExitCode } from "./exit-codes.js";
import { runDfget, type DfgetIo } from "./run.js";

/** A stderr that claims to be a terminal, recording what is written. */
function fakeTty(): { stream: DfgetIo["stderr"]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  }) as Writable & { isTTY: boolean; columns: number };
  stream.isTTY = true;
  stream.columns = 200;
  return { stream, text: () => chunks.join("") };
}

describe("runDfget on a terminal", () => {
  const daemon = new FakeDfdaemon();
  let dir: string;
  let socket: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-run-"));
    socket = join(dir, "d.sock");
    await daemon.start(socket);
  });
  after(async () => {
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function run(extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const stderr = fakeTty();
    let stdout = "";
    let clock = 0;
    const code = await runDfget({
      argv: ["http://origin.test/ok/f", "-O", join(dir, "f"), "--socket", socket, ...extra],
      env: {},
      cwd: dir,
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: stderr.stream,
      // Every update is 200 ms after the previous one, so none is throttled away.
      now: () => (clock += 200),
    });
    return { code, stdout, stderr: stderr.text() };
  }

  it("draws the bar up to 100% on stderr, then one summary line with bytes by source", async () => {
    const result = await run([]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /\r\x1b\[K\[#{24}\] 100%/);
    const lines = result.stderr.split("\n").filter((line) => line !== "");
    const summary = lines.at(-1)?.replace(/^[\s\S]*\r\x1b\[K/, "") ?? "";
    assert.match(summary, /^saved .*\/f: 2\.1 KiB in 42ms, .*\/s \(origin 100 B, peers 2\.1 KiB, cache 0 B\)$/);
    assert.equal(FAKE_CONTENT.length, 2200);
  });

  it("--no-progress keeps the summary but draws no bar", async () => {
    const result = await run(["--no-progress"]);
    assert.equal(result.code, 0);
    assert.doesNotMatch(result.stderr, /\[#/);
    assert.match(result.stderr, /^saved /);
  });

  it("--json keeps stderr empty even on a terminal", async () => {
    const result = await run(["--json"]);
    assert.equal(result.code, 0);
    assert.equal(result.stderr, "");
    assert.equal((JSON.parse(result.stdout) as { ok: boolean }).ok, true);
  });
});

describe("runDfget on a terminal when the daemon restarts mid-download", () => {
  it("says once that it lost the daemon, carries on once it is back, and counts what it had kept as cache", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dfget-run-restart-"));
    const socket = join(dir, "d.sock");
    const daemon = new FakeDfdaemon();
    await daemon.start(socket);
    try {
      const stderr = fakeTty();
      let clock = 0;
      const running = runDfget({
        argv: ["http://origin.test/resume/f", "-O", join(dir, "f"), "--socket", socket],
        env: {},
        cwd: dir,
        stdout: { write: () => true },
        stderr: stderr.stream,
        now: () => (clock += 200),
      });
      // Halfway on the bar: the first call is in flight.
      for (const deadline = Date.now() + 10_000; !stderr.text().includes(" 50%");) {
        assert.ok(Date.now() < deadline, "the bar reached 50%");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await daemon.kill();
      await daemon.start(socket);
      assert.equal(await running, ExitCode.ok);
      const text = stderr.text();
      assert.equal(text.match(/dfget: lost the daemon \([^)]*\); waiting up to 3m00s for it to come back\n/g)?.length, 1);
      assert.match(text, /\(origin 1\.1 KiB, peers 0 B, cache 1\.1 KiB\)\n$/);
    } finally {
      await daemon.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("runDfget with a bad timeout", () => {
  it("exits with the usage code and one line on stderr for --timeout 60d, without reaching a daemon", async () => {
    let stderr = "";
    let stdout = "";
    const code = await runDfget({
      argv: ["http://origin.test/ok/f", "-O", join(tmpdir(), "dfget-never-written"), "--socket", join(tmpdir(), "no-daemon-here.sock"), "--timeout", "60d"],
      env: {},
      cwd: tmpdir(),
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: new Writable({
        write(chunk: Buffer, _encoding, done) {
          stderr += chunk.toString();
          done();
        },
      }),
    });
    assert.equal(code, ExitCode.usage);
    assert.equal(stdout, "");
    assert.match(stderr, /^dfget: invalid --timeout: must be at most 2147483647ms \(about 24\.8 days[^\n]*\n$/);
  });
});
