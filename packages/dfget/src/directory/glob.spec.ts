import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileGlob, createKeyFilter } from "./glob.js";

function matches(pattern: string, key: string): boolean {
  return compileGlob(pattern)(key);
}

describe("compileGlob", () => {
  it("anchors the pattern at both ends of the key", () => {
    assert.equal(matches("config.json", "config.json"), true);
    assert.equal(matches("config.json", "a/config.json"), false);
    assert.equal(matches("config", "config.json"), false);
  });

  it("* matches within one segment only, the empty run included", () => {
    assert.equal(matches("*.json", "config.json"), true);
    assert.equal(matches("*.json", ".json"), true);
    assert.equal(matches("*.json", "sub/config.json"), false);
    assert.equal(matches("model-*.safetensors", "model-00001-of-00002.safetensors"), true);
    assert.equal(matches("a/*/c", "a/b/c"), true);
    assert.equal(matches("a/*/c", "a/b/x/c"), false);
  });

  it("? matches exactly one character, never a /", () => {
    assert.equal(matches("file?.bin", "file1.bin"), true);
    assert.equal(matches("file?.bin", "file.bin"), false);
    assert.equal(matches("file?.bin", "file12.bin"), false);
    assert.equal(matches("a?b", "a/b"), false);
  });

  it("** as a segment spans zero or more segments", () => {
    assert.equal(matches("**/*.json", "config.json"), true);
    assert.equal(matches("**/*.json", "a/b/c/config.json"), true);
    assert.equal(matches("**/*.json", "a/b/c/config.bin"), false);
    assert.equal(matches("a/**", "a/b"), true);
    assert.equal(matches("a/**", "a/b/c"), true);
    assert.equal(matches("a/**", "ab/c"), false);
    assert.equal(matches("a/**/z", "a/z"), true);
    assert.equal(matches("a/**/z", "a/b/c/z"), true);
    assert.equal(matches("**", "any/thing/at/all"), true);
  });

  it("** inside a segment is a single-segment *", () => {
    assert.equal(matches("a**b", "axxb"), true);
    assert.equal(matches("a**b", "a/b"), false);
  });

  it("treats regular-expression and other glob characters as literals, and \\ as an escape", () => {
    assert.equal(matches("a.b", "aXb"), false);
    assert.equal(matches("(x)+[y]{z}|$^", "(x)+[y]{z}|$^"), true);
    assert.equal(matches("*.{json,txt}", "a.json"), false);
    assert.equal(matches("what\\?", "what?"), true);
    assert.equal(matches("what\\?", "whatX"), false);
    assert.equal(matches("star\\*", "star*"), true);
    assert.equal(matches("star\\*", "starX"), false);
  });
});

describe("createKeyFilter", () => {
  it("keeps everything without patterns", () => {
    assert.equal(createKeyFilter({ include: [], exclude: [] })("a/b/c"), true);
  });

  it("keeps a key matching any include, and drops one matching any exclude, exclude winning", () => {
    const keep = createKeyFilter({ include: ["*.json", "**/*.safetensors"], exclude: ["**/optimizer*", "secret.json"] });
    assert.equal(keep("config.json"), true);
    assert.equal(keep("shards/model-1.safetensors"), true);
    assert.equal(keep("README.md"), false);
    assert.equal(keep("secret.json"), false);
    assert.equal(keep("ckpt/optimizer.safetensors"), false);
  });
});
