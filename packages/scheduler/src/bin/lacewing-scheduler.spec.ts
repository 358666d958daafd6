import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { LocalPki } from "@lacewing/common";

const BIN = fileURLToPath(new URL("../../bin/lacewing-scheduler.js", import.meta.url));

function run(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return { child, stderr: () => stderr };
}

describe("lacewing-scheduler binary", () => {
  let dir = "";
  let tlsDir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-scheduler-bin-"));
    tlsDir = await new LocalPki().writeTlsDir(join(dir, "tls"), "scheduler");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("refuses to start without TLS unless --insecure is given, and refuses --insecure beyond loopback unless forced", async () => {
    for (const [args, pattern] of [
      [["--listen", "127.0.0.1:0"], /tlsDir is required/],
      [["--listen", "0.0.0.0:0", "--insecure"], /refuses to listen in the clear on 0\.0\.0\.0:0/],
      [["--listen", "127.0.0.1:0", "--tls-dir", "/nonexistent"], /cannot read \/nonexistent\/ca\.crt/],
    ] as const) {
      const { child, stderr } = run([...args, "--metrics-port", "0"]);
      const [code] = (await once(child, "exit")) as [number];
      assert.notEqual(code, 0, args.join(" "));
      assert.equal(stderr().trim().split("\n").length, 1, stderr());
      assert.match(stderr(), pattern);
    }
  });

  it("warns at start when run with --insecure on loopback", async () => {
    const { child } = run(["--listen", "127.0.0.1:0", "--metrics-port", "0", "--insecure"]);
    const lines = createInterface({ input: child.stderr });
    let warned = false;
    for await (const line of lines) {
      if (line.includes("INSECURE")) warned = true;
      if (line.includes("scheduler started")) break;
    }
    child.stderr.resume();
    assert.ok(warned);
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  });

  it("exits non-zero with one line naming the bad flag", async () => {
    const { child, stderr } = run(["--listen", "127.0.0.1:0", "--schedule-timeout", "soon", "--tls-dir", tlsDir]);
    const [code] = (await once(child, "exit")) as [number];
    assert.notEqual(code, 0);
    assert.equal(stderr().trim().split("\n").length, 1);
    assert.match(stderr(), /invalid --schedule-timeout: expected a duration/);
  });

  it("serves health and metrics, and exits 0 on SIGTERM", async () => {
    const { child } = run(["--listen", "127.0.0.1:0", "--metrics-port", "0", "--log-level", "info", "--tls-dir", tlsDir]);
    const lines = createInterface({ input: child.stderr });
    let metricsPort = 0;
    for await (const line of lines) {
      if (!line.includes("scheduler started")) continue;
      metricsPort = (JSON.parse(line) as { metricsPort: number }).metricsPort;
      break;
    }
    child.stderr.resume();
    assert.ok(metricsPort > 0);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /lacewing_scheduler_hosts\{type="seed"\} 0/);
    assert.match(metrics, /lacewing_scheduler_schedule_duration_seconds/);
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number];
    assert.equal(code, 0);
  });
});
