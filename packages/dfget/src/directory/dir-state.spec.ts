import assert from "node:assert/strict";
import { lstat, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DirStateWriter, isUnchanged, parseDirState, readDirState, serializeDirState, writeDirState, writtenFileOf } from "./dir-state.js";
import { STATE_FILE } from "./output-key.js";

describe("the state file", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-state-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("round-trips through the file, sorted by key, and leaves no temp file behind", async () => {
    const files = new Map([
      ["z.bin", { version: "etag-z", size: 3, mtimeMs: 1000.5 }],
      ["a/b.json", { version: "sha-b", size: 0, mtimeMs: 2000 }],
    ]);
    await writeDirState(dir, { files });
    const read = await readDirState(dir);
    assert.deepEqual(new Map(read.files), files);
    assert.deepEqual(Object.keys((JSON.parse(await readFile(join(dir, STATE_FILE), "utf8")) as { files: object }).files), ["a/b.json", "z.bin"]);
    assert.deepEqual(await readdir(dir), [STATE_FILE]);
  });

  it("reads as empty when missing, malformed, of another format, or a symlink, and drops malformed entries one by one", async () => {
    const empty = await mkdtemp(join(dir, "empty-"));
    assert.equal((await readDirState(empty)).files.size, 0);
    assert.equal(parseDirState("{not json"), undefined);
    assert.equal(parseDirState(JSON.stringify({ format: 2, files: {} })), undefined);
    assert.equal(parseDirState(JSON.stringify({ format: 1, files: [] })), undefined);
    const partly = parseDirState(
      JSON.stringify({
        format: 1,
        files: { good: { version: "v", size: 1, mtimeMs: 2 }, bad: { version: 7, size: 1, mtimeMs: 2 }, worse: { version: "v", size: -1, mtimeMs: 2 } },
      }),
    );
    assert.deepEqual([...(partly?.files.keys() ?? [])], ["good"]);

    const linked = await mkdtemp(join(dir, "linked-"));
    const elsewhere = join(dir, "elsewhere.json");
    await writeFile(elsewhere, serializeDirState({ files: new Map([["k", { version: "v", size: 1, mtimeMs: 1 }]]) }));
    await symlink(elsewhere, join(linked, STATE_FILE));
    assert.equal((await readDirState(linked)).files.size, 0, "a symlink is not followed");
  });

  it("replaces a symlink planted at the state file's name instead of writing through it", async () => {
    const planted = await mkdtemp(join(dir, "planted-"));
    const victim = join(dir, "victim.txt");
    await writeFile(victim, "precious");
    await symlink(victim, join(planted, STATE_FILE));
    await writeDirState(planted, { files: new Map() });
    assert.equal(await readFile(victim, "utf8"), "precious");
    assert.ok((await lstat(join(planted, STATE_FILE))).isFile());
  });

  it("counts a file unchanged only with the same version, size and mtime, as a regular file", async () => {
    const path = join(dir, "data.bin");
    await writeFile(path, "12345");
    const written = writtenFileOf("v1", await lstat(path));
    assert.equal(await isUnchanged(path, "v1", written), true);
    assert.equal(await isUnchanged(path, "v2", written), false, "a new version");
    assert.equal(await isUnchanged(path, "v1", undefined), false, "never written");
    await utimes(path, new Date(), new Date(Date.now() + 5_000));
    assert.equal(await isUnchanged(path, "v1", written), false, "touched");
    const again = writtenFileOf("v1", await lstat(path));
    await writeFile(path, "123456");
    await utimes(path, again.mtimeMs / 1000, again.mtimeMs / 1000);
    assert.equal(await isUnchanged(path, "v1", again), false, "same mtime, other size");
    await rm(path);
    assert.equal(await isUnchanged(path, "v1", again), false, "deleted");
    await symlink(join(dir, "elsewhere.json"), path);
    assert.equal(await isUnchanged(path, "v1", writtenFileOf("v1", await lstat(join(dir, "elsewhere.json")))), false, "a symlink to a matching file");
  });

  it("DirStateWriter coalesces saves asked for during a write and flush waits for the last one", async () => {
    const target = await mkdtemp(join(dir, "writer-"));
    const writer = new DirStateWriter(target, { files: new Map() });
    for (let i = 0; i < 50; i++) writer.record(`k${i}`, { version: `v${i}`, size: i, mtimeMs: i });
    await writer.flush();
    assert.equal((await readDirState(target)).files.size, 50);
    assert.deepEqual(await readdir(target), [STATE_FILE]);
  });

  it("DirStateWriter.flush rejects when the directory cannot be written", async () => {
    const writer = new DirStateWriter(join(dir, "no-such-dir"), { files: new Map() });
    writer.record("k", { version: "v", size: 1, mtimeMs: 1 });
    await assert.rejects(writer.flush(), /ENOENT/);
  });
});
