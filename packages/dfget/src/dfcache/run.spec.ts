import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runDfcache } from "./run.js";

/** Runs dfcache in-process with captured output, against a socket nobody listens on. */
async function run(dir: string, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const stderrStream = { write: (chunk: string) => ((stderr += chunk), true) } as unknown as NodeJS.WritableStream;
  const code = await runDfcache({
    argv: [...argv, "--socket", join(dir, "no.sock")],
    env: {},
    cwd: dir,
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: stderrStream,
  });
  return { code, stdout, stderr };
}

describe("dfcache command line", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-dfcache-cli-"));
    await writeFile(join(dir, "file.bin"), "x");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("checks ids, replicas, TTLs and the input file before calling the daemon, each with its exit code and one line", async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [["stat", "ABC"], 2, /invalid id "ABC": must be 64 lowercase hex digits/],
      [["import", "file.bin", "--id", "g".repeat(64)], 2, /invalid --id/],
      [["import", "file.bin", "--replicas", "1.5"], 2, /--replicas.*whole number from 1 to 64/],
      [["import", "file.bin", "--ttl", "0s"], 2, /--ttl.*from 1s to 7d/],
      [["import", "missing.bin"], 7, /cannot read .*missing\.bin: no such file/],
      [["import", "."], 7, /is not a regular file/],
      [["export", "a".repeat(64)], 2, /-O, --output/],
      [["frobnicate"], 2, /unknown command/],
    ];
    for (const [argv, code, message] of cases) {
      const result = await run(dir, ...argv, "--json");
      assert.equal(result.code, code, `${argv.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.split("\n").filter(Boolean).length, 1);
      assert.equal((JSON.parse(result.stdout) as { ok: boolean }).ok, false);
    }
  });

  it("with valid input and no daemon, exits 3 and names dfcache's socket variable", async () => {
    const result = await run(dir, "import", "file.bin");
    assert.equal(result.code, 3);
    assert.match(result.stderr, /^dfcache: no dfdaemon is listening on .*point dfcache at a running one with --socket \/ DFCACHE_SOCKET\n$/);
  });

  it("--help lists the subcommands and exits 0", async () => {
    const result = await run(dir, "--help");
    assert.equal(result.code, 0);
    for (const name of ["import", "export", "stat", "delete"]) assert.match(result.stdout, new RegExp(`\\b${name}\\b`));
  });
});
