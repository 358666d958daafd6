import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ErrorCode, LacewingError } from "@lacewing/common";
import type { RemoteFile } from "@lacewing/sources";
import type { DownloadResult } from "../download.js";
import { DirStateWriter, readDirState } from "./dir-state.js";
import { downloadDirectory, type DirectoryProgress, type DownloadFile } from "./download-directory.js";

function file(key: string, version = "v1", size = 4): RemoteFile {
  return { key, url: `s3://bucket/p/${key}`, size, version };
}

/** A single-file downloader that writes `content-of-<key>@<version>` and records what it was asked. */
function fakeDownloader(behaviour: { fail?: (key: string) => LacewingError | undefined; gate?: Promise<void> } = {}): {
  downloadFile: DownloadFile;
  calls: string[];
  maxInFlight: () => number;
} {
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const downloadFile: DownloadFile = async (remote, output, hooks) => {
    calls.push(remote.key);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await behaviour.gate;
      // Let other workers start, so a broken bound would show.
      await new Promise((resolve) => setImmediate(resolve));
      if (hooks.signal.aborted) throw new LacewingError(ErrorCode.cancelled, "cancelled", "download cancelled");
      const failure = behaviour.fail?.(remote.key);
      if (failure !== undefined) throw failure;
      hooks.onProgress(remote.size / 2);
      const content = `content-of-${remote.key}@${remote.version}`;
      await writeFile(output, content);
      hooks.onProgress(remote.size);
      return result(remote, output, content.length);
    } finally {
      inFlight--;
    }
  };
  return { downloadFile, calls, maxInFlight: () => maxInFlight };
}

function result(remote: RemoteFile, output: string, bytes: number): DownloadResult {
  return {
    taskId: `t-${remote.key}`,
    url: remote.url,
    output,
    contentLength: bytes,
    digest: "",
    elapsedMs: 1,
    traffic: { origin: 1, peers: bytes - 1, cache: 0 },
    reconnects: 0,
  };
}

describe("downloadDirectory", () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "dfget-dir-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function run(
    root: string,
    files: RemoteFile[],
    downloadFile: DownloadFile,
    extra: { maxConcurrent?: number; signal?: AbortSignal; onProgress?: (p: DirectoryProgress) => void } = {},
  ) {
    const state = new DirStateWriter(root, await readDirState(root));
    const outcome = await downloadDirectory({
      root,
      files,
      maxConcurrent: extra.maxConcurrent ?? 4,
      state,
      downloadFile,
      failureContext: { socket: "/run/test.sock" },
      ...(extra.signal === undefined ? {} : { signal: extra.signal }),
      ...(extra.onProgress === undefined ? {} : { onProgress: extra.onProgress }),
    });
    await state.flush();
    return outcome;
  }

  it("downloads every file to DIR/<key>, creating directories, with bytes and traffic per file", async () => {
    const root = await mkdtemp(join(base, "all-"));
    const fake = fakeDownloader();
    const outcome = await run(root, [file("a.json"), file("sub/deep/b.bin")], fake.downloadFile);
    assert.equal(outcome.failure, undefined);
    assert.deepEqual(
      outcome.files.map((f) => [f.key, f.status, f.output, f.bytes]),
      [
        ["a.json", "downloaded", join(root, "a.json"), "content-of-a.json@v1".length],
        ["sub/deep/b.bin", "downloaded", join(root, "sub/deep/b.bin"), "content-of-sub/deep/b.bin@v1".length],
      ],
    );
    assert.deepEqual(outcome.files[0]?.traffic, { origin: 1, peers: "content-of-a.json@v1".length - 1, cache: 0 });
    assert.equal(await readFile(join(root, "sub/deep/b.bin"), "utf8"), "content-of-sub/deep/b.bin@v1");
    assert.deepEqual([...(await readDirState(root)).files.keys()].sort(), ["a.json", "sub/deep/b.bin"]);
  });

  it("never has more than --max-concurrent downloads in flight, and uses all of them", async () => {
    const root = await mkdtemp(join(base, "bound-"));
    const fake = fakeDownloader();
    const files = Array.from({ length: 12 }, (_, i) => file(`f${i}`));
    const outcome = await run(root, files, fake.downloadFile, { maxConcurrent: 3 });
    assert.equal(outcome.failure, undefined);
    assert.equal(fake.calls.length, 12);
    assert.equal(fake.maxInFlight(), 3);
  });

  it("a failed file fails the run with its key while the other files finish and are recorded", async () => {
    const root = await mkdtemp(join(base, "fail-"));
    const fake = fakeDownloader({
      fail: (key) => (key === "b" ? new LacewingError(ErrorCode.originStatus, "failed_precondition", "origin answered 404 Not Found") : undefined),
    });
    const outcome = await run(root, [file("a"), file("b"), file("c"), file("d")], fake.downloadFile, { maxConcurrent: 2 });
    assert.deepEqual(
      outcome.files.map((f) => f.status),
      ["downloaded", "failed", "downloaded", "downloaded"],
    );
    assert.deepEqual(outcome.files[1]?.error, { code: "LW_ERR_ORIGIN_STATUS", message: "b: origin answered 404 Not Found" });
    assert.deepEqual(outcome.failure, { exitCode: 1, code: "LW_ERR_ORIGIN_STATUS", message: "b: origin answered 404 Not Found", key: "b" });
    assert.deepEqual([...(await readDirState(root)).files.keys()].sort(), ["a", "c", "d"]);

    // The re-run fetches only the file that failed.
    const again = fakeDownloader();
    const rerun = await run(root, [file("a"), file("b"), file("c"), file("d")], again.downloadFile);
    assert.equal(rerun.failure, undefined);
    assert.deepEqual(again.calls, ["b"]);
  });

  it("a failure every file would share (no daemon) starts no further file and reports the rest as not started", async () => {
    const root = await mkdtemp(join(base, "fatal-"));
    const fake = fakeDownloader({ fail: () => new LacewingError(ErrorCode.noDaemon, "unavailable", "cannot reach /run/test.sock (ENOENT)") });
    const outcome = await run(
      root,
      Array.from({ length: 10 }, (_, i) => file(`f${i}`)),
      fake.downloadFile,
      { maxConcurrent: 2 },
    );
    assert.equal(outcome.failure?.exitCode, 3);
    // Both first files fail at once; the run names whichever stopped it first.
    assert.match(outcome.failure?.message ?? "", /^f[01]: no dfdaemon is listening on \/run\/test\.sock/);
    assert.ok(fake.calls.length <= 2, `started ${fake.calls.length}`);
    assert.equal(outcome.files.filter((f) => f.status === "not-started").length, 10 - fake.calls.length);
  });

  it("re-running skips unchanged files and fetches a changed version, a touched file and a deleted one", async () => {
    const root = await mkdtemp(join(base, "rerun-"));
    const listing = [file("same"), file("new-version"), file("touched"), file("deleted"), file("sub/x")];
    await run(root, listing, fakeDownloader().downloadFile);
    await utimes(join(root, "touched"), new Date(), new Date(Date.now() + 10_000));
    await rm(join(root, "deleted"));
    const second = fakeDownloader();
    const relisted = listing.map((f) => (f.key === "new-version" ? { ...f, version: "v2" } : f));
    const progress: DirectoryProgress[] = [];
    const outcome = await run(root, relisted, second.downloadFile, { onProgress: (p) => progress.push(p) });
    assert.deepEqual(second.calls.sort(), ["deleted", "new-version", "touched"]);
    assert.deepEqual(
      outcome.files.map((f) => f.status),
      ["unchanged", "downloaded", "downloaded", "downloaded", "unchanged"],
    );
    assert.equal(outcome.files[0]?.bytes, "content-of-same@v1".length);
    assert.equal(await readFile(join(root, "new-version"), "utf8"), "content-of-new-version@v2");
    // The totals count only what this run downloads.
    assert.deepEqual(progress[0], { filesDone: 0, filesTotal: 3, completedBytes: 0, totalBytes: 12 });
    assert.deepEqual(progress.at(-1), { filesDone: 3, filesTotal: 3, completedBytes: 12, totalBytes: 12 });
    const state = await readDirState(root);
    assert.equal(state.files.get("new-version")?.version, "v2");
    assert.equal(state.files.get("touched")?.mtimeMs, (await lstat(join(root, "touched"))).mtimeMs);

    // A third run has nothing to do.
    const third = fakeDownloader();
    await run(root, relisted, third.downloadFile);
    assert.deepEqual(third.calls, []);
  });

  it("a file rewritten by hand with another size is fetched again", async () => {
    const root = await mkdtemp(join(base, "edit-"));
    await run(root, [file("f")], fakeDownloader().downloadFile);
    const before = await lstat(join(root, "f"));
    await writeFile(join(root, "f"), "x".repeat(before.size + 1));
    const again = fakeDownloader();
    await run(root, [file("f")], again.downloadFile);
    assert.deepEqual(again.calls, ["f"]);
  });

  it("Ctrl-C stops the run: in-flight files are cancelled, no more start, finished ones stay recorded", async () => {
    const root = await mkdtemp(join(base, "cancel2-"));
    const controller = new AbortController();
    let open!: () => void;
    const gate2 = new Promise<void>((resolve) => (open = resolve));
    const slow = fakeDownloader({ gate: gate2 });
    const cancelled = run(
      root,
      Array.from({ length: 6 }, (_, i) => file(`f${i}`)),
      slow.downloadFile,
      { maxConcurrent: 2, signal: controller.signal },
    );
    while (slow.calls.length < 2) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    open();
    const outcome = await cancelled;
    assert.equal(outcome.failure?.exitCode, 130);
    assert.equal(outcome.failure?.code, "LW_ERR_CANCELLED");
    // The two workers start together; which asks first depends on when each one's directories are made.
    assert.deepEqual([...slow.calls].sort(), ["f0", "f1"]);
    assert.equal(outcome.files.filter((f) => f.status === "not-started").length, 4);
  });
});
