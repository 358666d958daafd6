import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { REDACTED, redactUrl } from "./redact-url.js";
import { DEFAULT_FILTERED_QUERY_PARAMS } from "./task-id.js";

describe("redactUrl", () => {
  it("hides userinfo, user name and password alike", () => {
    assert.equal(
      redactUrl("https://robot:s3cret@registry.example.com:5000/v2/app/manifests/1"),
      "https://[redacted]@registry.example.com:5000/v2/app/manifests/1",
    );
    assert.equal(redactUrl("https://ghp_token1234@github.example/org/repo.tar"), "https://[redacted]@github.example/org/repo.tar");
    assert.equal(redactUrl("https://:only-password@h/f"), "https://[redacted]@h/f");
  });

  it("hides the values of signed-URL and credential parameters, keeping the others and the order", () => {
    const signed =
      "https://bucket.s3.amazonaws.com/big.bin?version=3&X-Amz-Credential=AKIA%2F2025&X-Amz-Signature=deadbeef&x-goog-signature=abc&sig=zzz&token=t0k";
    assert.equal(
      redactUrl(signed),
      "https://bucket.s3.amazonaws.com/big.bin?version=3&X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]&x-goog-signature=[redacted]&sig=[redacted]&token=[redacted]",
    );
  });

  it("hides every parameter the task id treats as volatile, plus the caller's own", () => {
    for (const param of DEFAULT_FILTERED_QUERY_PARAMS)
      assert.equal(redactUrl(`https://h/f?keep=1&${param}=v4lue`), `https://h/f?keep=1&${param}=${REDACTED}`, param);
    assert.equal(redactUrl("https://h/f?session=abc&keep=1", { filteredQueryParams: ["Session"] }), "https://h/f?session=[redacted]&keep=1");
    assert.equal(redactUrl("https://h/f?session=abc&keep=1"), "https://h/f?session=abc&keep=1");
  });

  it("recognises encoded parameter names and drops the fragment", () => {
    assert.equal(redactUrl("https://h/f?%73ig=abc&a=1#access_token=xyz"), "https://h/f?%73ig=[redacted]&a=1");
  });

  it("hides the whole query when asked to (the daemon's messages)", () => {
    assert.equal(redactUrl("http://127.0.0.1:8080/bucket/y?sig=1&v=2", { query: "all" }), "http://127.0.0.1:8080/bucket/y?…");
    assert.equal(redactUrl("http://127.0.0.1:8080/bucket/y", { query: "all" }), "http://127.0.0.1:8080/bucket/y");
    assert.equal(redactUrl("http://u:p@h/y?a=1", { query: "all" }), "http://[redacted]@h/y?…");
  });

  it("is idempotent, so a stored redacted URL can be redacted again for display", () => {
    const once = redactUrl("https://u:p@h/f?sig=abc&a=1");
    assert.equal(redactUrl(once), once);
  });

  it("hides a string that is not an http(s) URL entirely", () => {
    assert.equal(redactUrl("not a url with a password"), REDACTED);
    assert.equal(redactUrl("ftp://u:p@h/f"), REDACTED);
  });

  it("leaves a URL without secrets as it was", () => {
    assert.equal(redactUrl("http://files.example/f2.bin"), "http://files.example/f2.bin");
    assert.equal(
      redactUrl("https://registry.example.com:5000/v2/app/blobs/sha256:ab?v=1&flag"),
      "https://registry.example.com:5000/v2/app/blobs/sha256:ab?v=1&flag",
    );
  });
});
