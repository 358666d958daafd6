import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { ListFiles, RemoteFile } from "@lacewing/sources";
import { FAKE_CONTENT, FakeDfdaemon } from "../testing/fake-dfdaemon.js";
import { STATE_FILE } from "../directory/output-key.js";
import type { ListerRegistry } from "../directory/listers.js";
import { runDfget } from "./run.js";

/** A listing whose file URLs point at the fake daemon's scenarios (`/ok/…`, `/origin-404/…`). */
function remote(key: string, scenario = "ok", version = "v1"): RemoteFile {
  return { key, url: `http://origin.test/${scenario}/${key}`, size: FAKE_CONTENT.length, version };
}

function listerOf(files: () => RemoteFile[], seen?: string[]): ListFiles {
  return async function* (rootUrl) {
    seen?.push(rootUrl);
    yield* files();
  };
}

function stream(isTTY: boolean): { stream: NodeJS.WritableStream & { isTTY: boolean; columns: number }; text: () => string } {
  const chunks: string[] = [];
  const writable = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  }) as Writable & { isTTY: boolean; columns: number };
  writable.isTTY = isTTY;
  writable.columns = 200;
  return { stream: writable, text: () => chunks.join("") };
}

interface FileJson {
  key: string;
  url: string;
  output: string;
  status: string;
  ok: boolean;
  bytes: number;
  traffic: { origin: number; peers: number; cache: number };
  error?: { code: string; message: string };
}
interface DirectoryJson {
  ok: boolean;
  url: string;
  output: string;
  files: FileJson[];
  summary: Record<string, unknown>;
  error?: { code: string; message: string };
}

describe("dfget -r against a fake dfdaemon and a fake lister", () => {
  const daemon = new FakeDfdaemon();
  let dir: string;
  let socket: string;
  let listing: RemoteFile[] = [];
  const listedRoots: string[] = [];
  const listers: ListerRegistry = { "s3:": listerOf(() => listing, listedRoots) };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-r-"));
    socket = join(dir, "d.sock");
    await daemon.start(socket);
  });
  after(async () => {
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function dfget(args: string[], options: { tty?: boolean; listers?: ListerRegistry } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const stderr = stream(options.tty ?? false);
    let stdout = "";
    let clock = 0;
    const code = await runDfget({
      argv: [...args, "--socket", socket],
      env: {},
      cwd: dir,
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: stderr.stream,
      now: () => (clock += 200),
      listers: options.listers ?? listers,
    });
    return { code, stdout, stderr: stderr.text() };
  }

  function oneErrorLine(stderr: string): string {
    const lines = stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `expected one stderr line, got: ${stderr}`);
    assert.match(lines[0] ?? "", /^dfget: /);
    return lines[0] ?? "";
  }

  it("downloads every listed file into DIR/<key> through the daemon and prints one JSON document with per-file entries", async () => {
    listing = [remote("config.json"), remote("weights/model-1.safetensors"), remote("weights/model-2.safetensors")];
    const before = daemon.received.length;
    const out = join(dir, "model");
    const run = await dfget(["-r", "s3://bucket/model/", "-O", "model", "--json", "--tag", "t1"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.equal(listedRoots.at(-1), "s3://bucket/model/");
    const lines = run.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1);
    const doc = JSON.parse(lines[0] ?? "") as DirectoryJson;
    assert.equal(doc.ok, true);
    assert.equal(doc.url, "s3://bucket/model/");
    assert.equal(doc.output, out);
    assert.equal(doc.error, undefined);
    assert.deepEqual(doc.files[1], {
      key: "weights/model-1.safetensors",
      url: "http://origin.test/ok/weights/model-1.safetensors",
      output: join(out, "weights/model-1.safetensors"),
      status: "downloaded",
      ok: true,
      bytes: FAKE_CONTENT.length,
      traffic: { origin: 100, peers: FAKE_CONTENT.length - 100, cache: 0 },
    });
    assert.deepEqual(doc.summary, {
      files: 3,
      downloaded: 3,
      unchanged: 0,
      failed: 0,
      notStarted: 0,
      bytes: 3 * FAKE_CONTENT.length,
      traffic: { origin: 300, peers: 3 * (FAKE_CONTENT.length - 100), cache: 0 },
      elapsedMs: doc.summary["elapsedMs"],
    });
    // Each file is its own download with the single-file request: its URL, its absolute output, the shared flags.
    const calls = daemon.received.slice(before).map((call) => call.download);
    assert.deepEqual(calls.map((d) => d.outputPath).sort(), [
      join(out, "config.json"),
      join(out, "weights/model-1.safetensors"),
      join(out, "weights/model-2.safetensors"),
    ]);
    assert.ok(calls.every((d) => d.tag === "t1"));
    assert.deepEqual(await readFile(join(out, "weights/model-2.safetensors")), FAKE_CONTENT);
    assert.deepEqual((await readdir(out)).sort(), [STATE_FILE, "config.json", "weights"]);
  });

  it("a re-run fetches only what changed, and reports the rest unchanged", async () => {
    listing = [remote("a.bin"), remote("b.bin")];
    assert.equal((await dfget(["-r", "s3://bucket/rerun/", "-O", "rerun"])).code, 0);
    const before = daemon.received.length;
    listing = [remote("a.bin"), remote("b.bin", "ok", "v2")];
    const run = await dfget(["-r", "s3://bucket/rerun/", "-O", "rerun", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      daemon.received.slice(before).map((call) => call.download.url),
      ["http://origin.test/ok/b.bin"],
    );
    const doc = JSON.parse(run.stdout) as DirectoryJson;
    assert.deepEqual(
      doc.files.map((f) => [f.key, f.status, f.bytes]),
      [
        ["a.bin", "unchanged", FAKE_CONTENT.length],
        ["b.bin", "downloaded", FAKE_CONTENT.length],
      ],
    );
    assert.deepEqual(doc.files[0]?.traffic, { origin: 0, peers: 0, cache: 0 });
  });

  it("--include and --exclude (repeatable) pick the files by key", async () => {
    listing = [remote("config.json"), remote("tokenizer.json"), remote("sub/extra.json"), remote("model.safetensors"), remote("README.md")];
    const run = await dfget([
      "-r",
      "s3://bucket/f/",
      "-O",
      "filtered",
      "--include",
      "*.json",
      "--include",
      "**/*.safetensors",
      "--exclude",
      "tokenizer.*",
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      (JSON.parse(run.stdout) as DirectoryJson).files.map((f) => f.key),
      ["config.json", "model.safetensors"],
    );
  });

  it("a failed file fails the run with its key in the one error line; the other files are placed", async () => {
    listing = [remote("good-1.bin"), remote("missing.bin", "origin-404"), remote("good-2.bin")];
    const run = await dfget(["-r", "s3://bucket/fail/", "-O", "failing", "--max-concurrent", "1"]);
    assert.equal(run.code, 1);
    assert.match(oneErrorLine(run.stderr), /^dfget: missing\.bin: origin answered 404 Not Found for http:\/\/origin\.test\/origin-404\/missing\.bin$/);
    assert.deepEqual(await readFile(join(dir, "failing", "good-2.bin")), FAKE_CONTENT);

    const json = await dfget(["-r", "s3://bucket/fail/", "-O", "failing", "--json"]);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout) as DirectoryJson;
    assert.equal(doc.ok, false);
    assert.deepEqual(doc.error, {
      code: "LW_ERR_ORIGIN_STATUS",
      message: "missing.bin: origin answered 404 Not Found for http://origin.test/origin-404/missing.bin",
    });
    assert.deepEqual(
      doc.files.map((f) => [f.key, f.status, f.ok, f.error?.code]),
      [
        ["good-1.bin", "unchanged", true, undefined],
        ["missing.bin", "failed", false, "LW_ERR_ORIGIN_STATUS"],
        ["good-2.bin", "unchanged", true, undefined],
      ],
    );
  });

  it("counts the failures when several files fail, naming the first", async () => {
    listing = [remote("x.bin", "origin-404"), remote("y.bin", "origin-404")];
    const run = await dfget(["-r", "s3://bucket/two/", "-O", "two"]);
    assert.equal(run.code, 1);
    assert.match(oneErrorLine(run.stderr), /^dfget: 2 of 2 files failed; first x\.bin: origin answered 404/);
  });

  it("refuses a listing with a traversal key: exit 1 naming it, no download, nothing written", async () => {
    for (const key of ["../escape.bin", "/etc/evil", "a//b", "a\\..\\b", STATE_FILE, "nul\u0000x"]) {
      listing = [remote("fine.bin"), remote(key)];
      const before = daemon.received.length;
      const run = await dfget(["-r", "s3://bucket/evil/", "-O", "evil", "--json"]);
      assert.equal(run.code, 1, key);
      assert.match(oneErrorLine(run.stderr), /^dfget: refusing listed file "/);
      assert.equal((JSON.parse(run.stdout) as DirectoryJson).error?.code, "LW_ERR_UNSAFE_KEY");
      assert.equal(daemon.received.length, before, `${JSON.stringify(key)} reached the daemon`);
    }
    await assert.rejects(access(join(dir, "evil")), "the output directory is not even created");
    await assert.rejects(access(join(dir, "escape.bin")));
  });

  it("refuses to write through a symlinked directory planted inside DIR: the file fails with its key, nothing lands outside", async () => {
    const outside = await mkdtemp(join(dir, "outside-"));
    await mkdir(join(dir, "planted"));
    await symlink(outside, join(dir, "planted", "etc"));
    listing = [remote("etc/passwd"), remote("fine.bin")];
    const before = daemon.received.length;
    const run = await dfget(["-r", "s3://bucket/planted/", "-O", "planted", "--json"]);
    assert.equal(run.code, 6);
    assert.match(oneErrorLine(run.stderr), /^dfget: etc\/passwd: .*planted\/etc is a symlink; refusing to write through it$/);
    assert.deepEqual(
      (JSON.parse(run.stdout) as DirectoryJson).files.map((f) => [f.key, f.status]),
      [
        ["etc/passwd", "failed"],
        ["fine.bin", "downloaded"],
      ],
    );
    assert.deepEqual(
      daemon.received.slice(before).map((call) => call.download.url),
      ["http://origin.test/ok/fine.bin"],
    );
    assert.deepEqual(await readdir(outside), []);
  });

  it("draws one overall bar on a terminal and ends with one summary line", async () => {
    listing = [remote("a"), remote("b")];
    const run = await dfget(["-r", "s3://bucket/tty/", "-O", "tty"], { tty: true });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /\r\x1b\[K\[#{24}\] 100%  2\/2 files  4\.3 KiB \/ 4\.3 KiB/);
    const summary =
      run.stderr
        .split("\n")
        .filter((line) => line !== "")
        .at(-1)
        ?.replace(/^[\s\S]*\r\x1b\[K/, "") ?? "";
    assert.match(summary, /^saved 2 files in .*\/tty: 2 downloaded, 4\.3 KiB in .* \(origin 200 B, peers 4\.1 KiB, cache 0 B\); 0 unchanged$/);
  });

  it("--include, --exclude and --max-concurrent without -r are a usage error", async () => {
    const before = daemon.received.length;
    const run = await dfget(["http://origin.test/ok/single", "-O", "single", "--exclude", "*.md", "--max-concurrent", "2"]);
    assert.equal(run.code, 2);
    assert.match(oneErrorLine(run.stderr), /^dfget: --exclude, --max-concurrent only apply with -r/);
    assert.equal(daemon.received.length, before);
  });

  it("Ctrl-C during the listing exits 130 even when the lister throws a foreign AbortError", async () => {
    const interrupt = new AbortController();
    const stuck: ListFiles = async function* (_root, options) {
      yield* [];
      await new Promise((_resolve, reject) => {
        const fail = (): void => reject(new DOMException("aborted", "AbortError"));
        if (options?.signal?.aborted === true) fail();
        options?.signal?.addEventListener("abort", fail);
      });
    };
    const stderr = stream(false);
    const running = runDfget({
      argv: ["-r", "s3://bucket/slow/", "-O", "slow", "--socket", socket],
      env: {},
      cwd: dir,
      stdout: { write: () => true },
      stderr: stderr.stream,
      signal: interrupt.signal,
      listers: { "s3:": stuck },
    });
    setImmediate(() => interrupt.abort());
    assert.equal(await running, 130);
    assert.match(oneErrorLine(stderr.text()), /^dfget: listing cancelled$/);
  });

  it("-r with an http(s) URL is a usage error", async () => {
    const run = await dfget(["-r", "https://example.com/dir/", "-O", "http-dir"]);
    assert.equal(run.code, 2);
    assert.match(oneErrorLine(run.stderr), /-r lists a directory, and an https URL names one file: drop -r/);
  });

  it("without a lister for the scheme (dfget's own registry until the sources plug in) the error says what -r supports", async () => {
    for (const url of ["s3://bucket/p/", "hf://owner/repo", "gs://bucket/p/"]) {
      const run = await dfget(["-r", url, "-O", "none", "--json"], { listers: {} });
      assert.equal(run.code, 2, url);
      assert.match(oneErrorLine(run.stderr), /dfget -r supports s3:\/\/ and hf:\/\/ directories/);
      assert.equal((JSON.parse(run.stdout) as DirectoryJson).error?.code, "LW_ERR_BAD_URL");
    }
  });

  it("refuses --digest with -r, a bad --max-concurrent and an output that is a file, without listing", async () => {
    const before = listedRoots.length;
    await writeFile(join(dir, "a-file"), "x");
    const cases: Array<[string[], number, RegExp]> = [
      [["--digest", `sha256:${"ab".repeat(32)}`], 2, /--digest .* cannot be used with -r/],
      [["--max-concurrent", "0"], 2, /max-concurrent.*from 1 to 64/],
      [["--max-concurrent", "65"], 2, /max-concurrent.*from 1 to 64/],
    ];
    for (const [extra, code, pattern] of cases) {
      const run = await dfget(["-r", "s3://bucket/p/", "-O", "bad", ...extra]);
      assert.equal(run.code, code, extra.join(" "));
      assert.match(oneErrorLine(run.stderr), pattern);
    }
    const file = await dfget(["-r", "s3://bucket/p/", "-O", "a-file"]);
    assert.equal(file.code, 6);
    assert.match(oneErrorLine(file.stderr), /is not a directory; with -r, -O names the directory/);
    assert.equal(listedRoots.length, before);
  });
});
