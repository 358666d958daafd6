import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestHub } from "@lacewing/sources/testing";
import { FakeDfdaemon } from "../testing/fake-dfdaemon.js";
import { ExitCode } from "./exit-codes.js";
import { runDfget } from "./run.js";

const TOKEN = "hf_dfget_token";

describe("dfget hf://", () => {
  const daemon = new FakeDfdaemon();
  let hub: TestHub;
  let dir: string;
  let socket: string;
  let commit: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-hf-"));
    socket = join(dir, "d.sock");
    await daemon.start(socket);
    hub = await TestHub.start({ token: TOKEN });
    // The fake daemon picks its scenario by the first path segment: an owner named "ok" succeeds.
    hub.createRepo({ id: "ok/model", private: true });
    commit = hub.commit("ok/model", { "weights.bin": Buffer.alloc(2048, 1) });
  });
  after(async () => {
    await hub.close();
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function run(url: string, env: NodeJS.ProcessEnv, extra: string[] = []) {
    let stdout = "";
    let stderr = "";
    const output = join(dir, "out.bin");
    const code = await runDfget({
      argv: [url, "-O", output, "--socket", socket, "--json", ...extra],
      // HF_HOME where no login token file is, whatever the machine's user has stored.
      env: { HF_ENDPOINT: hub.endpoint, HF_HOME: join(dir, "hf-home"), ...env },
      cwd: dir,
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: { write: (chunk: string) => ((stderr += chunk), true) } as unknown as NodeJS.WritableStream,
    });
    return { code, stdout, stderr };
  }

  it("hands the daemon the resolve URL of the pinned commit with the token as Authorization", async () => {
    const before = daemon.received.length;
    const result = await run("hf://ok/model/weights.bin", { HF_TOKEN: TOKEN });
    assert.equal(result.code, ExitCode.ok, result.stderr);
    const download = daemon.received[before]?.download;
    assert.equal(download?.url, `${hub.endpoint}/ok/model/resolve/${commit}/weights.bin`);
    assert.deepEqual(download?.requestHeaders, { Authorization: `Bearer ${TOKEN}` });
    assert.equal(download?.digest, `sha256:${createHash("sha256").update(Buffer.alloc(2048, 1)).digest("hex")}`, "the LFS sha256 is checked");
  });

  it("reads the token `huggingface-cli login` stored when no variable names one", async () => {
    const home = join(dir, "logged-in");
    await mkdir(home);
    await writeFile(join(home, "token"), TOKEN);
    const before = daemon.received.length;
    const result = await run("hf://ok/model/weights.bin", { HF_HOME: home });
    await rm(join(dir, "out.bin"), { force: true });
    await rm(home, { recursive: true });
    assert.equal(result.code, ExitCode.ok, result.stderr);
    assert.deepEqual(daemon.received[before]?.download.requestHeaders, { Authorization: `Bearer ${TOKEN}` });
  });

  it("lets -H Authorization win over HF_TOKEN, for the hub and the daemon alike", async () => {
    const before = daemon.received.length;
    const result = await run("hf://ok/model/weights.bin", { HF_TOKEN: "stale" }, ["-H", `Authorization: Bearer ${TOKEN}`]);
    assert.equal(result.code, ExitCode.ok, result.stderr);
    assert.deepEqual(daemon.received[before]?.download.requestHeaders, { Authorization: `Bearer ${TOKEN}` });
  });

  for (const [name, url, env, exitCode, code] of [
    ["a malformed URL", "hf://ok", {}, ExitCode.usage, "LW_ERR_BAD_URL"],
    ["a missing repository", "hf://ok/nothing/weights.bin", { HF_TOKEN: TOKEN }, ExitCode.failure, "LW_ERR_HUB_REPO_NOT_FOUND"],
    ["a private repository without a token", "hf://ok/model/weights.bin", {}, ExitCode.failure, "LW_ERR_HUB_REPO_NOT_FOUND"],
    ["a wrong token", "hf://ok/model/weights.bin", { HF_TOKEN: "wrong" }, ExitCode.failure, "LW_ERR_HUB_AUTH"],
    ["a missing revision", "hf://ok/model/weights.bin@v2", { HF_TOKEN: TOKEN }, ExitCode.failure, "LW_ERR_HUB_REVISION_NOT_FOUND"],
    ["a missing file", "hf://ok/model/other.bin", { HF_TOKEN: TOKEN }, ExitCode.failure, "LW_ERR_HUB_ENTRY_NOT_FOUND"],
  ] as const) {
    it(`fails on ${name} with ${code}, one line, without asking the daemon or writing anything`, async () => {
      const before = daemon.received.length;
      const files = await readdir(dir);
      const result = await run(url, env);
      assert.equal(result.code, exitCode);
      assert.equal(JSON.parse(result.stdout).error.code, code);
      assert.match(result.stderr, /^dfget: [^\n]+\n$/);
      assert.doesNotMatch(result.stderr, new RegExp(TOKEN));
      assert.equal(daemon.received.length, before);
      assert.deepEqual(await readdir(dir), files);
    });
  }
});
