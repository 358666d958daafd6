import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULTS, LacewingError } from "@lacewing/common";
import { checkOutput, configSchema, createCommand, parseCommandLine, parseHeader, resolveRequest, type CommandLine } from "./options.js";

function commandLine(argv: string[]): CommandLine {
  const parsed = parseCommandLine(argv);
  assert.equal(parsed.kind, "run");
  return parsed.commandLine;
}

function rejectsWith(code: string, pattern?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof LacewingError, String(err));
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

describe("option validation", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-options-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const resolveIn = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveRequest(commandLine(argv), { env, cwd: dir });

  it("builds the daemon request with defaults: default socket, no timeout, progress on, logs silent", async () => {
    const request = await resolveIn(["https://example.com/a.iso", "-O", "a.iso"]);
    assert.equal(request.socket, DEFAULTS.dfdaemon.socket);
    assert.equal(request.timeoutMs, 0);
    assert.equal(request.progress, true);
    assert.equal(request.json, false);
    assert.equal(request.logLevel, "silent");
    assert.deepEqual(request.download, {
      url: "https://example.com/a.iso",
      tag: "",
      application: "",
      filteredQueryParams: [],
      requestHeaders: {},
      digest: "",
      disableBackToSource: false,
      pieceLength: 0n,
      outputPath: join(dir, "a.iso"),
      timeoutMs: 0n,
    });
  });

  it("takes --piece-length as a size and rejects one out of range", async () => {
    assert.equal((await resolveIn(["http://x/a", "-O", "a", "--piece-length", "1MiB"])).download.pieceLength, 1_048_576n);
    await assert.rejects(resolveIn(["http://x/a", "-O", "a", "--piece-length", "1KiB"]), rejectsWith("LW_ERR_USAGE", /--piece-length/));
  });

  it("carries every flag into the request; hex digests are normalised to lower case", async () => {
    const request = await resolveIn([
      "https://example.com/a.iso?sig=1",
      "-O",
      join(dir, "b"),
      "--socket",
      "run/d.sock",
      "--digest",
      `sha256:${"AB".repeat(32)}`,
      "--tag",
      "t",
      "--application",
      "app",
      "--filter",
      "sig",
      "--timeout",
      "1m30s",
      "--disable-back-to-source",
      "--no-progress",
      "--json",
      "--log-level",
      "debug",
    ]);
    assert.equal(request.socket, join(dir, "run/d.sock"));
    assert.equal(request.timeoutMs, 90_000);
    assert.equal(request.download.timeoutMs, 90_000n);
    assert.equal(request.download.digest, `sha256:${"ab".repeat(32)}`);
    assert.deepEqual(request.download.filteredQueryParams, ["sig"]);
    assert.equal(request.download.tag, "t");
    assert.equal(request.download.application, "app");
    assert.equal(request.download.disableBackToSource, true);
    assert.equal(request.progress, false);
    assert.equal(request.json, true);
    assert.equal(request.logLevel, "debug");
  });

  it("takes the socket from DFGET_SOCKET, and a flag over it", async () => {
    assert.equal((await resolveIn(["http://x/a", "-O", "a"], { DFGET_SOCKET: "/env.sock" })).socket, "/env.sock");
    assert.equal((await resolveIn(["http://x/a", "-O", "a", "--socket", "/flag.sock"], { DFGET_SOCKET: "/env.sock" })).socket, "/flag.sock");
  });

  it("reads a YAML config; flags override it and -H adds to its headers", async () => {
    const config = join(dir, "dfget.yaml");
    await writeFile(config, "socket: /yaml.sock\ntimeout: 10s\nprogress: false\nheaders:\n  X-A: one\n  x-b: two\n");
    const request = await resolveIn(["http://x/a", "-O", "a", "--config", config, "--timeout", "20s", "-H", "X-B: three"]);
    assert.equal(request.socket, "/yaml.sock");
    assert.equal(request.timeoutMs, 20_000);
    assert.equal(request.progress, false);
    assert.deepEqual(request.download.requestHeaders, { "X-A": "one", "X-B": "three" });
  });

  it("names the bad key of a config file", async () => {
    const config = join(dir, "bad.yaml");
    await writeFile(config, "timeout: forever\n");
    await assert.rejects(resolveIn(["http://x/a", "-O", "a", "--config", config]), rejectsWith("LW_ERR_CONFIG", /timeout/));
  });

  it("rejects bad URLs, digests, timeouts and log levels", async () => {
    await assert.rejects(resolveIn(["example.com/a", "-O", "a"]), rejectsWith("LW_ERR_BAD_URL"));
    await assert.rejects(resolveIn(["file:///etc/passwd", "-O", "a"]), rejectsWith("LW_ERR_BAD_URL", /scheme file/));
    await assert.rejects(resolveIn(["http://x/a", "-O", "a", "--digest", "sha256:1234"]), rejectsWith("LW_ERR_BAD_DIGEST"));
    await assert.rejects(resolveIn(["http://x/a", "-O", "a", "--timeout", "5 minutes"]), rejectsWith("LW_ERR_USAGE", /--timeout/));
    await assert.rejects(
      resolveIn(["http://x/a", "-O", "a", "--log-level", "loud"]),
      rejectsWith("LW_ERR_USAGE", /^invalid --log-level: expected one of fatal/),
    );
  });

  it("refuses a timeout longer than a timer can wait (it would expire at once), from a flag, the environment or a config file", async () => {
    await assert.rejects(
      resolveIn(["http://x/a", "-O", "a", "--timeout", "60d"]),
      rejectsWith("LW_ERR_USAGE", /^invalid --timeout: must be at most 2147483647ms/),
    );
    await assert.rejects(
      resolveIn(["http://x/a", "-O", "a"], { DFGET_TIMEOUT: "25d" }),
      rejectsWith("LW_ERR_CONFIG", /timeout must be at most .*DFGET_TIMEOUT/),
    );
    const config = join(dir, "long.yaml");
    await writeFile(config, "timeout: 30d\n");
    await assert.rejects(resolveIn(["http://x/a", "-O", "a", "--config", config]), rejectsWith("LW_ERR_CONFIG", /timeout must be at most/));
    assert.equal((await resolveIn(["http://x/a", "-O", "a", "--timeout", "24d"])).timeoutMs, 24 * 86_400_000);
  });

  it("reports usage errors as LW_ERR_USAGE and --help as a clean exit", () => {
    assert.throws(() => parseCommandLine(["http://x/a"]), rejectsWith("LW_ERR_USAGE", /--output/));
    assert.throws(() => parseCommandLine(["-O", "a"]), rejectsWith("LW_ERR_USAGE", /missing required argument/));
    assert.throws(() => parseCommandLine(["http://x/a", "http://x/b", "-O", "a"]), rejectsWith("LW_ERR_USAGE", /too many arguments/));
    let help = "";
    assert.deepEqual(parseCommandLine(["--help"], { writeOut: (text) => (help += text) }), { kind: "exit", code: 0 });
    assert.match(help, /--disable-back-to-source/);
  });
});

describe("dfget's flags", () => {
  it("come from its config schema: one per key but the YAML-only headers, read into the key they set", () => {
    const options = createCommand().options.map((option) => option.attributeName());
    for (const [key, spec] of Object.entries(configSchema)) assert.equal(options.includes(key), spec.kind !== "map", key);
    const { commandLine } = parseCommandLine([
      "http://x/a",
      "-O",
      "a",
      "--filter",
      "sig",
      "--filter",
      "exp,token",
      "--no-progress",
      "--piece-length",
      "4MiB",
    ]) as {
      commandLine: CommandLine;
    };
    assert.deepEqual(commandLine.flags, { filter: ["sig", "exp,token"], progress: false, pieceLength: "4MiB" });
  });
});

describe("parseHeader", () => {
  it("splits at the first colon and trims", () => {
    assert.deepEqual(parseHeader("Authorization: Bearer a:b:c"), ["Authorization", "Bearer a:b:c"]);
    assert.deepEqual(parseHeader("X-Empty:"), ["X-Empty", ""]);
  });

  it("rejects malformed headers without echoing the value", () => {
    assert.throws(
      () => parseHeader("Authorization Bearer s3cret"),
      (err: unknown) => {
        assert.ok(err instanceof LacewingError);
        assert.equal(err.code, "LW_ERR_BAD_HEADER");
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      },
    );
    assert.throws(() => parseHeader("Bad Name: v"), rejectsWith("LW_ERR_BAD_HEADER", /header name "Bad Name"/));
    assert.throws(() => parseHeader(": v"), rejectsWith("LW_ERR_BAD_HEADER"));
    assert.throws(
      () => parseHeader("X-A: s3cret\r\nX-B: y"),
      (err: unknown) => {
        assert.ok(err instanceof LacewingError);
        assert.match(err.message, /line break/);
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      },
    );
  });
});

describe("checkOutput", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-output-"));
    await writeFile(join(dir, "file"), "x");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves a relative output against the cwd and accepts an existing file (it is replaced)", async () => {
    assert.equal(await checkOutput("new.bin", dir), join(dir, "new.bin"));
    assert.equal(await checkOutput("file", dir), join(dir, "file"));
  });

  it("rejects a directory, a missing directory and a parent that is a file", async () => {
    await assert.rejects(checkOutput(".", dir), rejectsWith("LW_ERR_OUTPUT", /is a directory/));
    await assert.rejects(checkOutput("sub/", dir), rejectsWith("LW_ERR_OUTPUT", /names a directory/));
    await assert.rejects(checkOutput("missing/x", dir), rejectsWith("LW_ERR_OUTPUT", /does not exist/));
    await assert.rejects(checkOutput("file/x", dir), rejectsWith("LW_ERR_OUTPUT", /file is not a directory/));
    await assert.rejects(checkOutput("", dir), rejectsWith("LW_ERR_OUTPUT", /empty/));
  });
});
