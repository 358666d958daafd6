import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostAllowList, isAllowedHost, isSameOrigin, parseAuthority } from "./request-guards.js";

describe("parseAuthority", () => {
  it("reads a name, a name with a port and a bracketed IPv6 literal, in lower case", () => {
    assert.deepEqual(parseAuthority("Manager.Internal"), { name: "manager.internal", port: undefined });
    assert.deepEqual(parseAuthority("127.0.0.1:8080"), { name: "127.0.0.1", port: 8080 });
    assert.deepEqual(parseAuthority("[::1]:8080"), { name: "[::1]", port: 8080 });
  });

  it("refuses anything else: userinfo, paths, schemes, empty, bad ports", () => {
    for (const bad of ["", "a@b", "a/b", "http://a", "a:", "a:99999", "::1", "[::1", "a b", "-a"])
      assert.equal(parseAuthority(bad), undefined, JSON.stringify(bad));
  });
});

describe("isAllowedHost", () => {
  const allowList = hostAllowList("127.0.0.1", 8080, ["manager.internal", "pinned.internal:1234"]);

  it("takes the loopback names at the bound port and allowedHosts at their own port, or any port when none is given", () => {
    for (const host of ["127.0.0.1:8080", "localhost:8080", "LocalHost:8080", "[::1]:8080", "manager.internal", "manager.internal:443", "pinned.internal:1234"])
      assert.equal(isAllowedHost(host, allowList), true, host);
  });

  it("refuses other names, other ports, a missing or malformed Host", () => {
    for (const host of [
      "evil.example:8080",
      "localhost:8081",
      "localhost",
      "127.0.0.2:8080",
      "pinned.internal:8080",
      "pinned.internal",
      "",
      "127.0.0.1:8080@evil",
    ])
      assert.equal(isAllowedHost(host, allowList), false, host);
    assert.equal(isAllowedHost(undefined, allowList), false);
  });

  it("takes the configured listen host, an IPv6 one bracketed", () => {
    assert.equal(isAllowedHost("127.0.0.2:9000", hostAllowList("127.0.0.2", 9000, [])), true);
    assert.equal(isAllowedHost("[::1]:9000", hostAllowList("::1", 9000, [])), true);
  });
});

describe("isSameOrigin", () => {
  it("accepts the Host's own origin, http or https (a TLS proxy in front), default ports included", () => {
    assert.equal(isSameOrigin("http://127.0.0.1:8080", "127.0.0.1:8080"), true);
    assert.equal(isSameOrigin("https://manager.example.com", "manager.example.com"), true);
    assert.equal(isSameOrigin("http://manager.example.com", "manager.example.com:80"), true);
    assert.equal(isSameOrigin("https://manager.example.com", "manager.example.com:443"), true);
  });

  it("refuses another host or port, null and non-web origins", () => {
    assert.equal(isSameOrigin("https://evil.example", "127.0.0.1:8080"), false);
    assert.equal(isSameOrigin("http://127.0.0.1:9999", "127.0.0.1:8080"), false);
    assert.equal(isSameOrigin("http://manager.example.com:8443", "manager.example.com"), false);
    assert.equal(isSameOrigin("null", "127.0.0.1:8080"), false);
    assert.equal(isSameOrigin("file://", "127.0.0.1:8080"), false);
    assert.equal(isSameOrigin("http://127.0.0.1:8080", undefined), false);
  });
});
