import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { startFakeRegistry } from "../testing/fake-registry.js";
import { pickPlatform, resolveImage } from "./image-resolver.js";
import { parseChallenge } from "./registry-auth.js";

const noCredentials = { username: "", password: "", headers: {} };

describe("resolveImage", () => {
  it("follows the Bearer challenge and picks the platform's manifest from an OCI index", async () => {
    const registry = await startFakeRegistry();
    try {
      const image = await resolveImage({ manifestUrl: registry.manifestUrl(), platform: "linux/arm64", credentials: noCredentials });
      assert.deepEqual(
        image.layers.map((l) => l.digest),
        registry.arm64Layers,
      );
      assert.equal(image.config?.digest, registry.arm64Config);
      assert.equal(image.config?.url, `${registry.origin}/v2/${registry.name}/blobs/${registry.arm64Config}`);
      assert.equal(image.authorization, `Bearer ${registry.token}`);
      assert.equal(registry.tokenRequests.length, 1, "the token is fetched once and reused for the platform manifest");
      assert.equal(registry.tokenRequests[0]?.authorization, undefined, "anonymous token without credentials");
      assert.equal(image.layers[0]?.url, `${registry.origin}/v2/${registry.name}/blobs/${registry.arm64Layers[0]}`);
    } finally {
      await registry.close();
    }
  });

  it("replaces a Bearer token past half its lifetime, so late layers of a long preheat carry a valid one", async () => {
    const registry = await startFakeRegistry({ tokenTtlSeconds: 300, rotateTokens: true });
    let now = 1_000_000;
    try {
      const image = await resolveImage({ manifestUrl: registry.manifestUrl(), platform: "linux/amd64", credentials: noCredentials, now: () => now });
      assert.equal(image.authorization, `Bearer ${registry.token}-1`);
      now += 149_000;
      assert.equal(await image.freshAuthorization(), `Bearer ${registry.token}-1`, "still young: no new token request");
      assert.equal(registry.tokenRequests.length, 1);
      now += 2_000;
      assert.equal(await image.freshAuthorization(), `Bearer ${registry.token}-2`);
      assert.equal(registry.tokenRequests[1]?.scope, `repository:${registry.name}:pull`, "the same scope as the challenge");
      now += 100_000;
      assert.equal(await image.freshAuthorization(), `Bearer ${registry.token}-2`, "the new token's lifetime counts from its issue");
    } finally {
      await registry.close();
    }
  });

  it("keeps an Authorization given by the caller that the registry accepts, however old", async () => {
    const registry = await startFakeRegistry();
    try {
      const image = await resolveImage({
        manifestUrl: registry.manifestUrl(),
        platform: "linux/amd64",
        credentials: { ...noCredentials, headers: { Authorization: `Bearer ${registry.token}` } },
        now: () => Number.MAX_SAFE_INTEGER,
      });
      assert.equal(await image.freshAuthorization(), `Bearer ${registry.token}`);
      assert.equal(registry.tokenRequests.length, 0, "the caller's token was accepted; none fetched");
    } finally {
      await registry.close();
    }
  });

  it("fails clearly when the token service rejects the credentials", async () => {
    const registry = await startFakeRegistry({ username: "alice", password: "right" });
    try {
      await assert.rejects(
        resolveImage({ manifestUrl: registry.manifestUrl(), platform: "linux/amd64", credentials: { ...noCredentials, username: "alice", password: "wrong" } }),
        (err: Error & { code?: string }) => err.code === "LW_ERR_MANAGER_REGISTRY_AUTH" && !err.message.includes("wrong"),
      );
    } finally {
      await registry.close();
    }
  });

  it("answers a Basic challenge with the credentials and reads a Docker v2 manifest", async () => {
    const layer = `sha256:${"ab".repeat(32)}`;
    const expected = `Basic ${Buffer.from("bob:pw").toString("base64")}`;
    const seen: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.accept);
      if (req.headers.authorization !== expected) return void res.writeHead(401, { "www-authenticate": 'Basic realm="registry"' }).end();
      res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v2+json" });
      res.end(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", layers: [{ digest: layer, size: 3 }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const image = await resolveImage({
        manifestUrl: `${origin}/v2/team/app/manifests/v1`,
        platform: "linux/amd64",
        credentials: { ...noCredentials, username: "bob", password: "pw" },
      });
      assert.deepEqual(
        image.layers.map((l) => l.url),
        [`${origin}/v2/team/app/blobs/${layer}`],
      );
      assert.equal(image.authorization, expected);
      assert.match(seen[0] ?? "", /application\/vnd\.docker\.distribution\.manifest\.list\.v2\+json/);
      assert.match(seen[0] ?? "", /application\/vnd\.oci\.image\.index\.v1\+json/);
    } finally {
      server.close();
    }
  });
});

describe("pickPlatform and parseChallenge", () => {
  it("matches os/arch and a variant when one is asked for", () => {
    const manifests = [
      { digest: "a", platform: { os: "linux", architecture: "arm", variant: "v6" } },
      { digest: "b", platform: { os: "linux", architecture: "arm", variant: "v7" } },
      { digest: "c", platform: { os: "linux", architecture: "amd64" } },
    ];
    assert.equal(pickPlatform(manifests, "linux/arm/v7")?.digest, "b");
    assert.equal(pickPlatform(manifests, "linux/amd64")?.digest, "c");
    assert.equal(pickPlatform(manifests, "windows/amd64"), undefined);
  });

  it("parses quoted challenge parameters", () => {
    const { scheme, params } = parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
    assert.equal(scheme, "bearer");
    assert.equal(params.get("realm"), "https://auth.example/token");
    assert.equal(params.get("scope"), "repository:a/b:pull,push");
  });
});
