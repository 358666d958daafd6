import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import type { ListFiles, RemoteFile } from "@lacewing/sources";
import { checkKey, keyProblemOf, STATE_FILE } from "./output-key.js";
import { listDirectory } from "./plan.js";

describe("keyProblemOf", () => {
  it("accepts relative keys in normal form, dots and odd but harmless names included", () => {
    for (const key of ["config.json", "a/b/c.bin", ".gitattributes", "a/.hidden/x", "..foo", "foo..", "a b/ü €.txt", "x:y", ".lacewing-dirX"]) {
      assert.equal(keyProblemOf(key), undefined, key);
    }
  });

  it("refuses every way out of the directory and every ambiguous spelling", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /empty/],
      ["../etc/passwd", /"\.\." segment/],
      ["a/../../b", /"\.\." segment/],
      ["..", /"\.\." segment/],
      ["a/./b", /"\." segment/],
      ["./a", /"\." segment/],
      ["/etc/passwd", /absolute/],
      ["a//b", /empty path segment/],
      ["a/", /empty path segment/],
      ["a\\..\\..\\b", /backslash/],
      ["..\\x", /backslash/],
      ["a\u0000b", /NUL or control/],
      ["a\nb", /NUL or control/],
      ["a\u001b[2Jb", /NUL or control/],
      [STATE_FILE, /state file/],
      [`${STATE_FILE}.0123.tmp`, /state file/],
      [".model.bin.lacewing-0123456789abcdef0123456789abcdef.tmp", /dfdaemon temp file/],
      [`${"x".repeat(201)}`, /segment is longer/],
      [`${"a/".repeat(600)}b`, /longer than 1024 bytes/],
    ];
    for (const [key, problem] of cases) assert.match(keyProblemOf(key) ?? "accepted", problem, JSON.stringify(key));
  });

  it("allows the state file's name below the top level, where it is not the state file", () => {
    assert.equal(keyProblemOf(`sub/${STATE_FILE}`), undefined);
  });

  it("checkKey throws LW_ERR_UNSAFE_KEY naming the key", () => {
    assert.throws(
      () => checkKey("../../x"),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_UNSAFE_KEY" && err.message.includes('"../../x"'),
    );
  });
});

function file(key: string, size = 10): RemoteFile {
  return { key, url: `s3://bucket/root/${key}`, size, version: `v-${key}` };
}

function listerOf(files: RemoteFile[]): ListFiles {
  return async function* () {
    yield* files;
  };
}

describe("listDirectory", () => {
  const all = (): boolean => true;

  it("returns the kept files in listing order and skips zero-byte directory markers", async () => {
    const listed = [file("b.bin"), file("sub/", 0), file("sub/a.json"), file("a.txt")];
    const files = await listDirectory(listerOf(listed), "s3://bucket/root/", { filter: (key) => !key.endsWith(".txt"), env: {} });
    assert.deepEqual(
      files.map((f) => f.key),
      ["b.bin", "sub/a.json"],
    );
  });

  it("refuses a traversal key even after good ones, before anything can be downloaded", async () => {
    await assert.rejects(
      listDirectory(listerOf([file("ok.bin"), file("../escape.bin")]), "s3://b/", { filter: all, env: {} }),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_UNSAFE_KEY" && /"\.\.\/escape\.bin"/.test(err.message),
    );
    await assert.rejects(listDirectory(listerOf([file("../", 0)]), "s3://b/", { filter: all, env: {} }), /refusing listed file "\.\."/);
  });

  it("does not check keys the filter drops", async () => {
    const files = await listDirectory(listerOf([file("../x.txt"), file("a.bin")]), "s3://b/", { filter: (key) => key.endsWith(".bin"), env: {} });
    assert.deepEqual(
      files.map((f) => f.key),
      ["a.bin"],
    );
  });

  it("refuses a key listed twice and a key that is also another key's directory", async () => {
    await assert.rejects(listDirectory(listerOf([file("a"), file("a")]), "s3://b/", { filter: all, env: {} }), /"a": it is listed twice/);
    await assert.rejects(
      listDirectory(listerOf([file("a/b/c"), file("a/b")]), "s3://b/", { filter: all, env: {} }),
      /"a\/b": it is listed both as a file and as a directory/,
    );
  });

  it("passes env and signal to the lister", async () => {
    const seen: unknown[] = [];
    const signal = new AbortController().signal;

    const list: ListFiles = async function* (root, options) {
      seen.push(root, options?.env, options?.signal);
      yield { key: "a", url: "hf://o/r/a@0", size: 1, version: "v" };
    };
    await listDirectory(list, "hf://o/r", { filter: all, env: { HF_TOKEN: "t" }, signal });
    assert.deepEqual(seen, ["hf://o/r", { HF_TOKEN: "t" }, signal]);
  });

  it("fails a listing with no file at all (a mistyped prefix), not one whose files the filters all drop", async () => {
    const empty: ListFiles = async function* () {};
    await assert.rejects(listDirectory(empty, "s3://bucket/typo/", { filter: all, env: {} }), {
      code: "LW_ERR_OBJECT_NOT_FOUND",
      message: /no file below s3:\/\/bucket\/typo\//,
    });
    const one: ListFiles = async function* () {
      yield { key: "a.bin", url: "s3://bucket/p/a.bin", size: 1, version: '"e"' };
    };
    assert.deepEqual(await listDirectory(one, "s3://bucket/p/", { filter: () => false, env: {} }), []);
  });
});
