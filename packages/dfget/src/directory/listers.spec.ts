import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import type { ListFiles } from "@lacewing/sources";
import { DEFAULT_LISTERS, lazyLister, listerFor } from "./listers.js";

const fake: ListFiles = async function* () {
  await Promise.resolve();
};

describe("listerFor", () => {
  it("picks the lister of the URL's scheme from the registry", () => {
    assert.equal(listerFor("s3://bucket/prefix/", { "s3:": fake }), fake);
    assert.equal(listerFor("hf://owner/repo@main", { "hf:": fake }), fake);
  });

  it("refuses a scheme without a lister (dfget's own registry included) with LW_ERR_BAD_URL saying what -r supports", () => {
    for (const [url, registry] of [
      ["gs://bucket/p/", DEFAULT_LISTERS],
      ["s3://bucket/p/", {}],
      ["hf://o/r", { "s3:": fake }],
      ["constructor://x", {}],
    ] as const) {
      assert.throws(
        () => listerFor(url, registry),
        (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_BAD_URL" && /dfget -r supports s3:\/\/ and hf:\/\/ directories/.test(err.message),
        url,
      );
    }
  });

  it("makes -r with an http(s) URL a usage error and a malformed URL a bad URL", () => {
    for (const url of ["http://example.com/dir/", "https://example.com/dir/"]) {
      assert.throws(
        () => listerFor(url, { "http:": fake, "https:": fake }),
        (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_USAGE",
      );
    }
    assert.throws(
      () => listerFor("not a url", {}),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_BAD_URL",
    );
  });
});

describe("lazyLister", () => {
  it("loads the real lister once, on first use, and passes the root URL and options through", async () => {
    let loads = 0;
    const seen: unknown[] = [];
    const lister = lazyLister(async () => {
      loads++;
      await Promise.resolve();
      return async function* (rootUrl, options) {
        await Promise.resolve();
        seen.push(rootUrl, options?.env);
        yield { key: "a", url: `${rootUrl}a`, size: 1, version: "v" };
      };
    });
    assert.equal(loads, 0);
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) for await (const file of lister("s3://b/p/", { env: { AWS_REGION: "x" } })) keys.push(file.key);
    assert.equal(loads, 1);
    assert.deepEqual(keys, ["a", "a"]);
    assert.deepEqual(seen, ["s3://b/p/", { AWS_REGION: "x" }, "s3://b/p/", { AWS_REGION: "x" }]);
  });
});
