import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isRegistryHost, routeRequest, upstreamOf, type RouteOptions } from "./registry-route.js";

const options: RouteOptions = {
  defaultRegistry: "docker.io",
  allowedRegistries: ["docker.io", "ghcr.io", "quay.io", "127.0.0.1:5000", "host:99999"],
  plainHttpRegistries: ["127.0.0.1:5000"],
};
const digest = `sha256:${"a".repeat(64)}`;

describe("routeRequest", () => {
  it("turns a blob GET into a blob route on the registry named by ns, without ns in the forwarded query", () => {
    const route = routeRequest("GET", `/v2/library/alpine/blobs/${digest}?ns=ghcr.io`, options);
    assert.deepEqual(route, {
      kind: "blob",
      upstream: { registry: "ghcr.io", origin: "https://ghcr.io" },
      name: "library/alpine",
      digest,
      method: "GET",
      path: `/v2/library/alpine/blobs/${digest}`,
      search: "",
    });
  });

  it("uses the default registry without ns, and Docker Hub's API host for docker.io", () => {
    const route = routeRequest("GET", `/v2/library/alpine/manifests/3.20`, options);
    assert.equal(route.kind, "manifest");
    assert.deepEqual(route.kind === "manifest" && route.upstream, { registry: "docker.io", origin: "https://registry-1.docker.io" });
  });

  it("reaches a registry listed as plain HTTP over http", () => {
    const route = routeRequest("HEAD", `/v2/test/img/manifests/v1?ns=127.0.0.1%3A5000`, options);
    assert.equal(route.kind === "manifest" && route.upstream.origin, "http://127.0.0.1:5000");
    assert.equal(route.kind === "manifest" && route.method, "HEAD");
  });

  it("keeps other query parameters and passes tags/list, /v2/ and digests of other algorithms through as other", () => {
    const tags = routeRequest("GET", "/v2/a/b/tags/list?n=10&ns=quay.io&last=x", options);
    assert.equal(tags.kind, "other");
    assert.equal(tags.kind === "other" && tags.search, "?n=10&last=x");
    assert.equal(routeRequest("GET", "/v2/", options).kind, "other");
    assert.equal(routeRequest("GET", `/v2/a/blobs/blake3:${"b".repeat(64)}`, options).kind, "other");
  });

  it("accepts manifest references that are tags or digests", () => {
    assert.equal(routeRequest("GET", `/v2/a/manifests/${digest}`, options).kind, "manifest");
    assert.equal(routeRequest("GET", "/v2/a/manifests/v1.2.3-rc_1", options).kind, "manifest");
  });

  const rejected: Array<[string, string | undefined, string, number]> = [
    ["bad digest syntax", "GET", "/v2/a/blobs/sha256:xyz!", 400],
    ["a sha256 digest of the wrong length", "GET", "/v2/a/blobs/sha256:abc", 400],
    ["an uppercase sha256 digest", "GET", `/v2/a/blobs/sha256:${"A".repeat(64)}`, 400],
    ["dot-dot segments in the name", "GET", `/v2/../../etc/blobs/${digest}`, 400],
    ["encoded dot-dot in the name", "GET", `/v2/a/%2e%2e/blobs/${digest}`, 400],
    ["an encoded slash", "GET", `/v2/a%2fb/manifests/latest`, 400],
    ["a backslash", "GET", `/v2/a\\..\\b/manifests/latest`, 400],
    ["an empty segment", "GET", `/v2/a//b/manifests/latest`, 400],
    ["an uppercase repository name", "GET", `/v2/Library/alpine/manifests/latest`, 400],
    ["a bad tag", "GET", `/v2/a/manifests/-bad`, 400],
    ["an ns that is not a host", "GET", `/v2/a/manifests/latest?ns=evil.com%2Fpath`, 400],
    ["an ns with a bad port", "GET", `/v2/a/manifests/latest?ns=host:99999`, 400],
    ["a path outside /v2", "GET", `/etc/passwd`, 404],
    ["a push", "POST", `/v2/a/blobs/uploads/`, 405],
    ["an upload session GET", "GET", `/v2/a/blobs/uploads/123`, 405],
    ["a DELETE", "DELETE", `/v2/a/manifests/latest`, 405],
    ["no method", undefined, `/v2/`, 405],
  ];
  for (const [what, method, url, status] of rejected) {
    it(`rejects ${what} with ${status}`, () => {
      const route = routeRequest(method, url, options);
      assert.equal(route.kind, "rejected");
      assert.equal(route.kind === "rejected" && route.status, status);
    });
  }

  it("rejects an ns outside the allowed registries with 403", () => {
    const none = routeRequest("GET", `/v2/a/blobs/${digest}?ns=docker.io`, { ...options, allowedRegistries: [] });
    assert.equal(none.kind, "rejected");
    assert.match(none.kind === "rejected" ? none.message : "", /serves no registries: list them with --proxy-registries/);
    const route = routeRequest("GET", `/v2/a/blobs/${digest}?ns=unknown.example`, { ...options, allowedRegistries: ["docker.io"] });
    assert.equal(route.kind === "rejected" && route.status, 403);
    assert.equal(routeRequest("GET", `/v2/a/blobs/${digest}?ns=docker.io`, { ...options, allowedRegistries: ["docker.io"] }).kind, "blob");
  });

  it("requires ns when no default registry is configured", () => {
    const route = routeRequest("GET", `/v2/a/blobs/${digest}`, { ...options, defaultRegistry: "" });
    assert.equal(route.kind === "rejected" && route.status, 400);
  });
});

describe("isRegistryHost / upstreamOf", () => {
  it("knows hosts, IPs with ports and bracketed IPv6 from everything else", () => {
    for (const ok of ["docker.io", "ghcr.io", "10.0.0.1:5000", "[::1]:5000", "localhost", "my-registry.local:443"]) assert.ok(isRegistryHost(ok), ok);
    for (const bad of ["", "a/b", "-x.io", "host:0", "host:70000", "ev il", "x.io?y", "user@host"]) assert.ok(!isRegistryHost(bad), bad);
  });

  it("maps docker.io to registry-1.docker.io over https", () => {
    assert.deepEqual(upstreamOf("docker.io", []), { registry: "docker.io", origin: "https://registry-1.docker.io" });
  });
});
