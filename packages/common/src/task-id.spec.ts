import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLacewingError } from "./errors.js";
import { DEFAULT_FILTERED_QUERY_PARAMS, canonicalUrl, checkSourceUrl, newPeerId, ociBlobDigestOf, parseUrl, taskIdOf } from "./task-id.js";

const DIGEST = `sha256:${"ab12".repeat(16)}`;

function assertBadUrl(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_BAD_URL" && err.kind === "invalid_argument");
}

describe("taskIdOf", () => {
  it("is a 64-hex sha256 and deterministic", () => {
    const id = taskIdOf({ url: "https://example.com/file.tar" });
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(taskIdOf({ url: "https://example.com/file.tar" }), id);
  });

  it("ignores signed-URL parameters and containerd's ns by default", () => {
    const plain = taskIdOf({ url: "https://bucket.s3.amazonaws.com/big.bin?version=3" });
    const signed =
      "https://bucket.s3.amazonaws.com/big.bin?version=3&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20250101" +
      "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef&ns=docker.io";
    assert.equal(taskIdOf({ url: signed }), plain);
    assert.equal(taskIdOf({ url: "https://bucket.s3.amazonaws.com/big.bin?version=3&X-Amz-Signature=other" }), plain);
  });

  it("filters default parameters case-insensitively", () => {
    const plain = taskIdOf({ url: "https://h/f" });
    assert.equal(taskIdOf({ url: "https://h/f?x-amz-signature=1&NS=docker.io" }), plain);
  });

  it("covers every default filtered parameter", () => {
    const plain = taskIdOf({ url: "https://h/f?keep=1" });
    for (const param of DEFAULT_FILTERED_QUERY_PARAMS) {
      assert.equal(taskIdOf({ url: `https://h/f?keep=1&${param}=volatile` }), plain, param);
    }
  });

  it("keeps non-filtered parameters significant", () => {
    assert.notEqual(taskIdOf({ url: "https://h/f?version=1" }), taskIdOf({ url: "https://h/f?version=2" }));
    assert.notEqual(taskIdOf({ url: "https://h/f?version=1" }), taskIdOf({ url: "https://h/f" }));
  });

  it("drops extra filtered parameters on top of the defaults", () => {
    const plain = taskIdOf({ url: "https://h/f?keep=1" });
    const withSession = "https://h/f?keep=1&session=abc&X-Amz-Date=now";
    assert.notEqual(taskIdOf({ url: withSession }), plain);
    assert.equal(taskIdOf({ url: withSession, filteredQueryParams: ["session"] }), plain);
  });

  it("does not depend on query parameter order", () => {
    assert.equal(taskIdOf({ url: "https://h/f?b=2&a=1&c=3" }), taskIdOf({ url: "https://h/f?c=3&a=1&b=2" }));
  });

  it("ignores the URL fragment", () => {
    assert.equal(taskIdOf({ url: "https://h/f#part" }), taskIdOf({ url: "https://h/f" }));
  });

  it("changes with the tag and the application", () => {
    const url = "https://h/f";
    const base = taskIdOf({ url });
    assert.equal(taskIdOf({ url, tag: "", application: "" }), base);
    assert.notEqual(taskIdOf({ url, tag: "v1" }), base);
    assert.notEqual(taskIdOf({ url, application: "app" }), base);
    assert.notEqual(taskIdOf({ url, tag: "v1" }), taskIdOf({ url, tag: "v2" }));
    // Separated fields: moving text between tag and application is a different task.
    assert.notEqual(taskIdOf({ url, tag: "ab", application: "" }), taskIdOf({ url, tag: "a", application: "b" }));
  });

  it("gives an OCI blob the same id across registries, repositories and ns values", () => {
    const ids = new Set([
      taskIdOf({ url: `https://registry-1.docker.io/v2/library/ubuntu/blobs/${DIGEST}` }),
      taskIdOf({ url: `https://ghcr.io/v2/acme/tools/base/blobs/${DIGEST}?ns=ghcr.io` }),
      taskIdOf({ url: `http://127.0.0.1:5000/v2/mirror/ubuntu/blobs/${DIGEST}?ns=docker.io` }),
      taskIdOf({ url: `https://quay.io/v2/other/blobs/${DIGEST}?ns=quay.io&X-Amz-Signature=x` }),
    ]);
    assert.equal(ids.size, 1);
  });

  it("still separates OCI blobs by digest, tag and application", () => {
    const url = `https://r/v2/x/blobs/${DIGEST}`;
    assert.notEqual(taskIdOf({ url }), taskIdOf({ url: `https://r/v2/x/blobs/sha256:${"cd34".repeat(16)}` }));
    assert.notEqual(taskIdOf({ url }), taskIdOf({ url, tag: "t" }));
    assert.notEqual(taskIdOf({ url }), taskIdOf({ url, application: "a" }));
  });

  it("treats manifests like ordinary URLs", () => {
    assert.notEqual(taskIdOf({ url: `https://a.io/v2/x/manifests/${DIGEST}` }), taskIdOf({ url: `https://b.io/v2/x/manifests/${DIGEST}` }));
  });

  it("throws LW_ERR_BAD_URL for a non-http scheme and for garbage", () => {
    assertBadUrl(() => taskIdOf({ url: "ftp://example.com/file" }));
    assertBadUrl(() => taskIdOf({ url: "file:///etc/passwd" }));
    assertBadUrl(() => taskIdOf({ url: "not a url" }));
    assertBadUrl(() => taskIdOf({ url: "" }));
  });
});

describe("ociBlobDigestOf", () => {
  it("returns the digest of a blob path, including nested repository names", () => {
    assert.equal(ociBlobDigestOf(`https://r/v2/library/ubuntu/blobs/${DIGEST}`), DIGEST);
    assert.equal(ociBlobDigestOf(new URL(`https://r/v2/a/b/c/blobs/${DIGEST}?ns=r`)), DIGEST);
    const sha512 = `sha512:${"0f".repeat(64)}`;
    assert.equal(ociBlobDigestOf(`https://r/v2/x/blobs/${sha512}`), sha512);
  });

  it("returns undefined for non-blob paths and malformed digests", () => {
    assert.equal(ociBlobDigestOf(`https://r/v2/x/manifests/${DIGEST}`), undefined);
    assert.equal(ociBlobDigestOf("https://r/v2/x/blobs/sha256:abc"), undefined);
    assert.equal(ociBlobDigestOf(`https://r/v2/blobs/${DIGEST}`), undefined);
    assert.equal(ociBlobDigestOf(`https://r/v2/x/blobs/${DIGEST}/extra`), undefined);
  });
});

describe("canonicalUrl", () => {
  it("removes filtered parameters, sorts the rest and drops the fragment", () => {
    assert.equal(canonicalUrl("https://h/f?z=1&X-Amz-Date=2&a=2#frag"), "https://h/f?a=2&z=1");
    assert.equal(canonicalUrl("https://h/f?ns=docker.io"), "https://h/f");
    assert.equal(canonicalUrl("https://h/f?a=1&drop=2", ["drop"]), "https://h/f?a=1");
  });
});

describe("parseUrl", () => {
  it("accepts http and https", () => {
    assert.equal(parseUrl("http://h/x").host, "h");
    assert.equal(parseUrl("https://h:8443/x").port, "8443");
  });

  it("names the unsupported scheme", () => {
    assert.throws(() => parseUrl("s3://bucket/key"), /unsupported URL scheme s3/);
  });
});

describe("newPeerId", () => {
  it("embeds the host id and task id prefix and is unique per call", () => {
    const taskId = taskIdOf({ url: "https://h/f" });
    const a = newPeerId("host-1", taskId);
    const b = newPeerId("host-1", taskId);
    assert.ok(a.startsWith(`host-1-${taskId.slice(0, 12)}-`));
    assert.match(a, /-[0-9a-f]{12}$/);
    assert.notEqual(a, b);
  });
});

describe("s3:// task ids", () => {
  it("pin the object's version: the same key with another ETag is another task, the same ETag the same task", () => {
    const first = taskIdOf({ url: "s3://bucket/models/a.bin", sourceVersion: '"etag-1"' });
    assert.equal(taskIdOf({ url: "s3://bucket/models/a.bin", sourceVersion: '"etag-1"' }), first);
    assert.notEqual(taskIdOf({ url: "s3://bucket/models/a.bin", sourceVersion: '"etag-2"' }), first);
    assert.notEqual(taskIdOf({ url: "s3://bucket/models/b.bin", sourceVersion: '"etag-1"' }), first);
  });

  it("are checked by checkSourceUrl, which names what is wrong", () => {
    checkSourceUrl("s3://bucket/key");
    checkSourceUrl("https://h/x");
    assert.throws(() => checkSourceUrl("s3://bucket"), /the key is missing/);
    assert.throws(() => checkSourceUrl("s3:///key"), /the bucket is missing/);
    assert.throws(() => checkSourceUrl("s3://Bad_Bucket/key"), /is not a bucket name/);
    assert.throws(() => checkSourceUrl("ftp://h/x"), /unsupported URL scheme ftp/);
  });
});
