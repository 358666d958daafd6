import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { nodeTopologyCommand } from "./node-topology-command.js";
import { topologyOfLabels, withTopology } from "./node-topology.js";

const REGION = "topology.kubernetes.io/region";
const ZONE = "topology.kubernetes.io/zone";

describe("topologyOfLabels", () => {
  it("makes the region the idc and region|zone the location", () => {
    assert.deepEqual(topologyOfLabels({ [REGION]: "eu-west-1", [ZONE]: "eu-west-1b", "kubernetes.io/hostname": "n1" }), {
      idc: "eu-west-1",
      location: "eu-west-1|eu-west-1b",
    });
  });

  it("takes what is there when a label is missing, and nothing from a node without them", () => {
    assert.deepEqual(topologyOfLabels({ [REGION]: "us-east1" }), { idc: "us-east1" });
    assert.deepEqual(topologyOfLabels({ [ZONE]: "zone-a" }), { location: "zone-a" });
    assert.deepEqual(topologyOfLabels({}), {});
  });

  it("ignores a value that is no label value (it could break the a|b|c location)", () => {
    assert.deepEqual(topologyOfLabels({ [REGION]: "eu|west", [ZONE]: "" }), {});
    assert.deepEqual(topologyOfLabels({ [REGION]: "x".repeat(64), [ZONE]: "-a" }), {});
  });

  it("reads the labels it is told to", () => {
    const labels = { "example.com/dc": "dc-7", "example.com/rack": "r12", [REGION]: "ignored" };
    assert.deepEqual(topologyOfLabels(labels, { regionLabel: "example.com/dc", zoneLabel: "example.com/rack" }), { idc: "dc-7", location: "dc-7|r12" });
  });
});

describe("withTopology", () => {
  it("adds idc and location to the config, keeping every other key", () => {
    assert.deepEqual(withTopology({ gcInterval: "2m" }, { idc: "r", location: "r|z" }), { gcInterval: "2m", idc: "r", location: "r|z" });
  });

  it("keeps an idc or location the config sets", () => {
    assert.deepEqual(withTopology({ idc: "mine", location: "" }, { idc: "r", location: "r|z" }), { idc: "mine", location: "r|z" });
    assert.deepEqual(withTopology({ location: "a|b" }, {}), { location: "a|b" });
  });
});

/** A Kubernetes API stand-in over HTTPS, with a certificate for 127.0.0.1 made by openssl. */
async function fakeApiServer(dir: string, answer: (path: string, authorization: string | undefined) => { status: number; body: unknown }): Promise<Server> {
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=kubernetes",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "server.key"),
      "-out",
      join(dir, "ca.crt"),
    ],
    { stdio: "ignore" },
  );
  await writeFile(join(dir, "token"), "the-token\n");
  const server = createServer({ key: await readFile(join(dir, "server.key")), cert: await readFile(join(dir, "ca.crt")) }, (req, res) => {
    const { status, body } = answer(req.url ?? "", req.headers.authorization);
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

// Under CI a missing tool fails the run (as test/helpers/requirements.ts has every suite do) instead of skipping it.
const ci = !["", "0", "false"].includes((process.env["CI"] ?? "").trim().toLowerCase());
if (!hasOpenssl && ci) throw new Error("the node-topology spec needs openssl (apt-get install openssl); under CI a missing tool fails instead of skipping");

describe("dfdaemon node-topology", { skip: hasOpenssl ? false : "needs openssl to make the fake API server's certificate" }, () => {
  let dir: string;
  let server: Server;
  const seen: Array<{ path: string; authorization: string | undefined }> = [];
  let nodes: Record<string, Record<string, string>> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lacewing-node-topology-"));
    server = await fakeApiServer(dir, (path, authorization) => {
      seen.push({ path, authorization });
      const name = decodeURIComponent(path.replace("/api/v1/nodes/", ""));
      if (authorization !== "Bearer the-token") return { status: 401, body: { kind: "Status" } };
      const labels = nodes[name];
      return labels === undefined
        ? { status: 403, body: { kind: "Status", reason: "Forbidden" } }
        : { status: 200, body: { kind: "Node", metadata: { name, labels } } };
    });
  });
  after(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (...args: string[]): Promise<Record<string, unknown>> => {
    const out = join(dir, `config-${seen.length}.yaml`);
    const { port } = server.address() as AddressInfo;
    await nodeTopologyCommand().parseAsync(["--out", out, "--api-server", `https://127.0.0.1:${port}`, "--service-account-dir", dir, ...args], {
      from: "user",
    });
    return JSON.parse(await readFile(out, "utf8")) as Record<string, unknown>;
  };

  it("reads its own Node with the service account's token and writes idc and location into the daemon's config", async () => {
    nodes = { "node-a": { [REGION]: "eu-west-1", [ZONE]: "eu-west-1c" } };
    const base = join(dir, "base.json");
    await writeFile(base, JSON.stringify({ gcInterval: "2m", location: "" }));
    assert.deepEqual(await run("--node", "node-a", "--base-config", base), { gcInterval: "2m", idc: "eu-west-1", location: "eu-west-1|eu-west-1c" });
    assert.deepEqual(seen.at(-1), { path: "/api/v1/nodes/node-a", authorization: "Bearer the-token" });
  });

  it("takes the node name from NODE_NAME, as the chart's downward API sets it", async () => {
    nodes = { "node-b": { [ZONE]: "z1" } };
    process.env["NODE_NAME"] = "node-b";
    try {
      assert.deepEqual(await run(), { location: "z1" });
    } finally {
      delete process.env["NODE_NAME"];
    }
  });

  it("writes the base config unchanged when the node cannot be read, so the daemon still starts", async () => {
    nodes = {};
    const base = join(dir, "base-2.json");
    await writeFile(base, JSON.stringify({ idc: "typed-by-hand" }));
    const before = seen.length;
    assert.deepEqual(await run("--node", "node-c", "--base-config", base), { idc: "typed-by-hand" });
    assert.equal(seen.length, before + 1, "a 403 is not asked again");
  });

  it("refuses to run without a node name", async () => {
    await assert.rejects(run(), /--node \(or NODE_NAME\) is required/);
  });
});
