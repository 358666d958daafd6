import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { fetchRange, validatorChange } from "./origin-client.js";
import { createOriginAgent } from "./origin-policy.js";

const policy = { allowLoopback: true };
const dispatcher = createOriginAgent(policy);

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

describe("origin client redirects", () => {
  const seen: Array<{ at: string; authorization: string | undefined }> = [];
  const storage = createServer((req, res) => {
    seen.push({ at: "storage", authorization: req.headers.authorization });
    res.writeHead(206, { "content-range": "bytes 0-3/4", "content-length": 4 }).end("blob");
  });
  let storageUrl = "";
  const registry = createServer((req, res) => {
    seen.push({ at: `registry ${req.url}`, authorization: req.headers.authorization });
    if (req.url === "/same") res.writeHead(307, { location: "/v2/x/blobs/y" }).end();
    else if (req.url === "/cross") res.writeHead(307, { location: `${storageUrl}/bucket/y?sig=1` }).end();
    else res.writeHead(206, { "content-range": "bytes 0-3/4", "content-length": 4 }).end("blob");
  });
  let registryUrl = "";

  before(async () => {
    storageUrl = await listen(storage);
    registryUrl = await listen(registry);
  });
  after(() => {
    storage.close();
    registry.close();
  });

  it("keeps Authorization on a same-origin redirect and drops it when the redirect leaves the origin", async () => {
    const headers = { authorization: "Bearer t" };
    assert.equal(Buffer.concat((await fetchRange({ url: `${registryUrl}/same`, headers, dispatcher, policy }, 0, 4)).chunks).toString(), "blob");
    assert.equal(Buffer.concat((await fetchRange({ url: `${registryUrl}/cross`, headers, dispatcher, policy }, 0, 4)).chunks).toString(), "blob");
    assert.deepEqual(seen, [
      { at: "registry /same", authorization: "Bearer t" },
      { at: "registry /v2/x/blobs/y", authorization: "Bearer t" },
      { at: "registry /cross", authorization: "Bearer t" },
      { at: "storage", authorization: undefined },
    ]);
  });
});

describe("origin client errors", () => {
  const origin = createServer((_req, res) => res.writeHead(403).end());
  let originUrl = "";
  before(async () => {
    originUrl = await listen(origin);
  });
  after(() => origin.close());

  it("names the URL without its query string, which may carry a signature", async () => {
    await assert.rejects(
      fetchRange({ url: `${originUrl}/bucket/big.bin?X-Amz-Signature=deadbeef&v=1`, headers: {}, dispatcher, policy }, 0, 4),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal(err.message, `origin returned HTTP 403 for ${originUrl}/bucket/big.bin?…`);
        return true;
      },
    );
  });
});

describe("validatorChange", () => {
  it("lets the ETag decide when the held pieces have one, else Last-Modified, and counts a validator gone as a change", () => {
    const monday = "Mon, 05 Jan 2026 00:00:00 GMT";
    const tuesday = "Tue, 06 Jan 2026 00:00:00 GMT";
    assert.equal(validatorChange({ etag: '"a"', lastModified: monday }, { etag: '"a"', lastModified: tuesday }), undefined);
    assert.match(validatorChange({ etag: '"a"' }, { etag: '"b"' }) ?? "", /ETag "a" is now "b"/);
    assert.match(validatorChange({ etag: '"a"' }, { lastModified: monday }) ?? "", /now absent/);
    assert.equal(validatorChange({ lastModified: monday }, { lastModified: monday, etag: '"new"' }), undefined);
    assert.match(validatorChange({ lastModified: monday }, { lastModified: tuesday }) ?? "", /Last-Modified/);
    assert.equal(validatorChange({}, { etag: '"a"' }), undefined, "nothing to compare");
  });
});
