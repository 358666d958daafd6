import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseRegistryEntry, renderHostsToml, writeHostsTomls } from "./hosts-toml.js";

describe("parseRegistryEntry", () => {
  it("maps docker.io to Docker Hub's API server and keeps an explicit plain-HTTP scheme", () => {
    assert.deepEqual(parseRegistryEntry("docker.io"), { host: "docker.io", server: "https://registry-1.docker.io" });
    assert.deepEqual(parseRegistryEntry("ghcr.io"), { host: "ghcr.io", server: "https://ghcr.io" });
    assert.deepEqual(parseRegistryEntry("http://10.0.0.5:5000/"), { host: "10.0.0.5:5000", server: "http://10.0.0.5:5000" });
  });

  it("refuses entries that are not registry hosts, so nothing is written outside the config path", () => {
    for (const bad of ["../etc", "a/b", "ftp://x.io", "", "x.io/path"]) assert.throws(() => parseRegistryEntry(bad), /not a registry host/, bad);
  });
});

describe("renderHostsToml", () => {
  it("names the real registry as server and the mirror as a pull+resolve host", () => {
    const text = renderHostsToml({ host: "docker.io", server: "https://registry-1.docker.io" }, "http://127.0.0.1:4002");
    assert.match(text, /^server = "https:\/\/registry-1\.docker\.io"$/m);
    assert.match(text, /^\[host\."http:\/\/127\.0\.0\.1:4002"\]\n {2}capabilities = \["pull", "resolve"\]$/m);
  });

  it("leaves server out for _default, where containerd uses the pulled registry", () => {
    assert.doesNotMatch(renderHostsToml({ host: "_default", server: undefined }, "http://127.0.0.1:4002"), /^server/m);
  });
});

describe("writeHostsTomls", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-hosts-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes one file per registry, keeps a different existing file as a backup, and leaves an identical one alone", async () => {
    await mkdir(join(dir, "ghcr.io"), { recursive: true });
    await writeFile(join(dir, "ghcr.io", "hosts.toml"), 'server = "https://ghcr.io"\n# hand-written\n');
    const registries = [parseRegistryEntry("docker.io"), parseRegistryEntry("ghcr.io"), { host: "_default", server: undefined }];
    const first = await writeHostsTomls(dir, registries, "http://127.0.0.1:4002");
    assert.deepEqual(
      first.map((r) => r.state),
      ["written", "replaced", "written"],
    );
    assert.equal(await readFile(join(dir, "ghcr.io", "hosts.toml.bak"), "utf8"), 'server = "https://ghcr.io"\n# hand-written\n');
    assert.match(await readFile(join(dir, "ghcr.io", "hosts.toml"), "utf8"), /127\.0\.0\.1:4002/);

    const second = await writeHostsTomls(dir, registries, "http://127.0.0.1:4002");
    assert.deepEqual(
      second.map((r) => r.state),
      ["unchanged", "unchanged", "unchanged"],
    );
    const third = await writeHostsTomls(dir, [parseRegistryEntry("ghcr.io")], "http://127.0.0.1:4100");
    assert.equal(third[0]!.state === "replaced" && third[0]!.backup, join(dir, "ghcr.io", "hosts.toml.bak.1"), "an older backup is never overwritten");
    assert.deepEqual((await readdir(join(dir, "ghcr.io"))).sort(), ["hosts.toml", "hosts.toml.bak", "hosts.toml.bak.1"]);
  });
});
