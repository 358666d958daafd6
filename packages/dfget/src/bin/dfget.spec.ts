import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FAKE_CONTENT, FakeDfdaemon } from "../testing/fake-dfdaemon.js";

const BIN = fileURLToPath(new URL("../../bin/dfget.js", import.meta.url));
const DIGEST = `sha256:${"ab".repeat(32)}`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  onSpawn?: (pid: number) => void;
}

/** Spawns the built binary; `onSpawn` may signal it. Never uses spawnSync: the fake daemon lives in this process. */
function dfget(args: string[], options: RunOptions = {}): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("DFGET_")));
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function assertOneErrorLine(run: Run, pattern: RegExp): void {
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one stderr line, got: ${run.stderr}`);
  assert.match(lines[0] ?? "", /^dfget: /);
  assert.match(lines[0] ?? "", pattern);
}

describe("dfget binary against a fake dfdaemon", () => {
  const daemon = new FakeDfdaemon();
  let dir: string;
  let socket: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-"));
    socket = join(dir, "d.sock");
    await daemon.start(socket);
  });

  after(async () => {
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("downloads: the daemon writes the file, stdout stays empty, the request carries absolute output, digest and timeout", async () => {
    const call = daemon.nextCall();
    const run = await dfget(["http://origin.test/ok/file.bin", "-O", "out-1.bin", "--socket", socket, "--digest", DIGEST, "--timeout", "30s", "--tag", "t1"], {
      cwd: dir,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "");
    assert.equal(run.stderr, "", "no progress bar or summary when stderr is not a terminal");
    const { download } = await call;
    // A relative -O resolves against dfget's cwd, not the daemon's.
    assert.equal(download.outputPath, join(dir, "out-1.bin"));
    assert.equal(download.digest, DIGEST);
    assert.equal(download.timeoutMs, 30_000n);
    assert.equal(download.tag, "t1");
    assert.deepEqual(await readFile(download.outputPath), FAKE_CONTENT);
  });

  it("--json prints exactly one result object on stdout", async () => {
    const output = join(dir, "out-json.bin");
    const run = await dfget(["http://origin.test/ok/file.bin", "-O", output, "--socket", socket, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0] ?? ""), {
      ok: true,
      taskId: "task-1",
      url: "http://origin.test/ok/file.bin",
      output,
      contentLength: FAKE_CONTENT.length,
      digest: "sha256:fake",
      elapsedMs: 42,
      traffic: { origin: 100, peers: FAKE_CONTENT.length - 100, cache: 0 },
      reconnects: 0,
    });
    assert.deepEqual(await readFile(output), FAKE_CONTENT);
  });

  it("forwards -H headers (and config-file headers) to the daemon as request_headers", async () => {
    const config = join(dir, "dfget.yaml");
    await writeFile(config, `socket: ${socket}\nheaders:\n  X-From-Config: yes\n  Authorization: Basic old\n`);
    const call = daemon.nextCall();
    const run = await dfget([
      "http://origin.test/ok/h.bin",
      "-O",
      join(dir, "out-h.bin"),
      "--config",
      config,
      "-H",
      "Authorization: Bearer s3cret",
      "-H",
      "X-Trace:  a:b ",
      "--filter",
      "X-Amz-Signature",
      "--filter",
      "token",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const { download } = await call;
    assert.deepEqual({ ...download.requestHeaders }, { "X-From-Config": "yes", Authorization: "Bearer s3cret", "X-Trace": "a:b" });
    assert.deepEqual(download.filteredQueryParams, ["X-Amz-Signature", "token"]);
    assert.doesNotMatch(run.stderr + run.stdout, /s3cret/);
  });

  it("finds the daemon through DFGET_SOCKET", async () => {
    const run = await dfget(["http://origin.test/ok/env.bin", "-O", join(dir, "out-env.bin")], { env: { DFGET_SOCKET: socket } });
    assert.equal(run.code, 0, run.stderr);
  });

  it("origin error: exit 1 with the daemon's message", async () => {
    const run = await dfget(["http://origin.test/origin-404/x", "-O", join(dir, "never-1"), "--socket", socket]);
    assert.equal(run.code, 1);
    assertOneErrorLine(run, /origin answered 404 Not Found for http:\/\/origin\.test\/origin-404\/x/);
  });

  it("origin error with --json: {ok:false, error:{code,message}} on stdout", async () => {
    const run = await dfget(["http://origin.test/origin-404/x", "-O", join(dir, "never-2"), "--socket", socket, "--json"]);
    assert.equal(run.code, 1);
    const result = JSON.parse(run.stdout) as { ok: boolean; error: { code: string; message: string } };
    assert.equal(result.ok, false);
    assert.equal(result.error.code, "LW_ERR_ORIGIN_STATUS");
    assert.match(result.error.message, /404/);
  });

  it("digest mismatch: exit 5 and no file at the output", async () => {
    const output = join(dir, "never-3");
    const run = await dfget(["http://origin.test/digest-mismatch/x", "-O", output, "--socket", socket, "--digest", DIGEST]);
    assert.equal(run.code, 5);
    assertOneErrorLine(run, /digest mismatch/);
    assert.ok(!(await readdir(dir)).includes("never-3"));
  });

  it("daemon reports an output error: exit 6", async () => {
    const run = await dfget(["http://origin.test/output-error/x", "-O", join(dir, "never-4"), "--socket", socket]);
    assert.equal(run.code, 6);
    assertOneErrorLine(run, /cannot write/);
  });

  it("daemon reports a timeout: exit 4", async () => {
    const run = await dfget(["http://origin.test/daemon-timeout/x", "-O", join(dir, "never-5"), "--socket", socket, "--timeout", "100ms"]);
    assert.equal(run.code, 4);
    assertOneErrorLine(run, /timed out/);
  });

  it("a daemon that never answers is timed out client-side (exit 4) and sees the call cancelled", async () => {
    const call = daemon.nextCall();
    const run = await dfget(["http://origin.test/hang/x", "-O", join(dir, "never-6"), "--socket", socket, "--timeout", "200ms"]);
    assert.equal(run.code, 4);
    assertOneErrorLine(run, /timed out after 200ms/);
    await (
      await call
    ).cancelled;
  });

  it("Ctrl-C cancels the download and exits 130", async () => {
    const call = daemon.nextCall();
    const run = await dfget(["http://origin.test/hang/x", "-O", join(dir, "never-7"), "--socket", socket], {
      onSpawn: (pid) => void call.then(() => process.kill(pid, "SIGINT")),
    });
    assert.equal(run.code, 130);
    assertOneErrorLine(run, /cancelled/);
    await (
      await call
    ).cancelled;
  });

  it("bad URL: exit 2 without contacting the daemon", async () => {
    const before = daemon.received.length;
    const run = await dfget(["not a url", "-O", join(dir, "never-8"), "--socket", socket]);
    assert.equal(run.code, 2);
    assertOneErrorLine(run, /not a valid URL/);
    assert.equal(daemon.received.length, before);
  });

  it("bad flags, digest syntax and headers: exit 2 without contacting the daemon", async () => {
    const before = daemon.received.length;
    const url = "http://origin.test/ok/x";
    const out = join(dir, "never-9");
    const cases: Array<[string[], RegExp]> = [
      [["--digest", "md5:abc"], /invalid digest/],
      [["-H", "no colon here"], /invalid header/],
      [["--timeout", "soon"], /invalid --timeout/],
      [["--no-such-flag"], /unknown option/],
    ];
    for (const [extra, pattern] of cases) {
      const run = await dfget([url, "-O", out, "--socket", socket, ...extra]);
      assert.equal(run.code, 2, `${extra.join(" ")}: ${run.stderr}`);
      assertOneErrorLine(run, pattern);
    }
    assert.equal(daemon.received.length, before);
  });

  it("output problems are found locally: exit 6 without contacting the daemon", async () => {
    const before = daemon.received.length;
    const missing = await dfget(["http://origin.test/ok/x", "-O", join(dir, "no-such-dir", "f"), "--socket", socket]);
    assert.equal(missing.code, 6);
    assertOneErrorLine(missing, /does not exist/);
    const isDir = await dfget(["http://origin.test/ok/x", "-O", dir, "--socket", socket]);
    assert.equal(isDir.code, 6);
    assertOneErrorLine(isDir, /is a directory/);
    assert.equal(daemon.received.length, before);
  });

  it("output directory not writable: exit 6 without contacting the daemon", async () => {
    const before = daemon.received.length;
    // Root writes anywhere, so as root run dfget as nobody; its tree must then be world-readable.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const parent = await mkdtemp(join(tmpdir(), "dfget-ro-"));
    try {
      await chmod(parent, 0o755);
      const readOnly = join(parent, "read-only");
      await mkdir(readOnly, { mode: 0o555 });
      await chmod(readOnly, 0o555);
      const run = await dfget(["http://origin.test/ok/x", "-O", join(readOnly, "f"), "--socket", socket], { ...asNobody, cwd: parent });
      assert.equal(run.code, 6, run.stderr);
      assertOneErrorLine(run, /cannot write to directory .*read-only \(EACCES\)/);
      assert.equal(daemon.received.length, before);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("no daemon: exit 3 with how to start one", async () => {
    const run = await dfget(["http://origin.test/ok/x", "-O", join(dir, "never-10"), "--socket", join(dir, "missing.sock")]);
    assert.equal(run.code, 3);
    assertOneErrorLine(run, /no dfdaemon is listening on .*missing\.sock \(no such socket\); start one with `npx dfdaemon --scheduler .* --socket /);
  });

  it("a stale socket nobody listens on: exit 3 (connection refused)", async () => {
    const stale = join(dir, "stale.sock");
    // A daemon killed with SIGKILL leaves its socket file behind.
    const holder = spawn(process.execPath, ["-e", "require('net').createServer().listen(process.argv[1], () => console.log('up'))", stale]);
    await once(holder.stdout, "data");
    holder.kill("SIGKILL");
    await once(holder, "exit");
    const run = await dfget(["http://origin.test/ok/x", "-O", join(dir, "never-11"), "--socket", stale]);
    assert.equal(run.code, 3, run.stderr);
    assertOneErrorLine(run, /no dfdaemon is listening on .*stale\.sock \(connection refused\)/);
  });
});
