import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, LacewingError } from "@lacewing/common";
import { formatHfUrl, isCommitSha, parseHfUrl } from "./hf-url.js";

const SHA = "0123456789abcdef0123456789abcdef01234567";

describe("parseHfUrl", () => {
  it("reads a model by default, with the path and no revision", () => {
    assert.deepEqual(parseHfUrl("hf://owner/model/sub/weights.safetensors"), {
      repoType: "model",
      repoId: "owner/model",
      path: "sub/weights.safetensors",
      revision: undefined,
    });
  });

  it("reads datasets/ and spaces/ prefixes, and a revision after the last @ (which may hold slashes)", () => {
    assert.deepEqual(parseHfUrl("hf://datasets/owner/data/train/part-0.parquet@v1.0"), {
      repoType: "dataset",
      repoId: "owner/data",
      path: "train/part-0.parquet",
      revision: "v1.0",
    });
    assert.deepEqual(parseHfUrl("hf://spaces/owner/app@refs/pr/1"), { repoType: "space", repoId: "owner/app", path: "", revision: "refs/pr/1" });
    assert.equal(parseHfUrl(`hf://owner/model/a@b.txt@${SHA}`).path, "a@b.txt");
  });

  it("takes everything after the repository's @ as the revision when there is no path", () => {
    assert.equal(parseHfUrl("hf://owner/model@refs/pr/2").revision, "refs/pr/2");
    assert.equal(parseHfUrl("hf://owner/model@refs%2Fpr%2F2").revision, "refs/pr/2");
    assert.equal(parseHfUrl("hf://owner/model@v1/config.json").path, "");
  });

  it("drops slashes around the path, so a directory may end in /", () => {
    assert.equal(parseHfUrl("hf://owner/model/dir/@main").path, "dir");
  });

  for (const [url, why] of [
    ["hf://owner", /expected hf:\/\//],
    ["hf://datasets/owner", /expected hf:\/\//],
    ["hf://own er/model", /not a repository id/],
    ["hf://owner/model.git", /not a repository id/],
    ["hf://owner/model/../x", /\.\. segment/],
    ["hf://owner/model/a//b", /empty/],
    ["hf://owner/model/file@", /empty/],
    ["hf://owner/model/file?x=1", /query string/],
    ["https://huggingface.co/owner/model", /hf:\/\//],
  ] as const) {
    it(`refuses ${url} with LW_ERR_BAD_URL`, () => {
      assert.throws(
        () => parseHfUrl(url),
        (err: unknown) => err instanceof LacewingError && err.code === ErrorCode.badUrl && why.test(err.message) && !err.message.includes("\n"),
      );
    });
  }
});

describe("formatHfUrl", () => {
  it("round-trips through parseHfUrl with the revision last", () => {
    for (const url of ["hf://owner/model", `hf://datasets/owner/data/a/b.bin@${SHA}`, "hf://spaces/owner/app/x@refs/pr/1"])
      assert.equal(formatHfUrl(parseHfUrl(url)), url);
  });
});

describe("isCommitSha", () => {
  it("is true only for a full 40-hex sha", () => {
    assert.equal(isCommitSha(SHA), true);
    assert.equal(isCommitSha(SHA.slice(0, 7)), false);
    assert.equal(isCommitSha("main"), false);
  });
});
