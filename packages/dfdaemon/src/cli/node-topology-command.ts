import { readFile, rename, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { Command } from "commander";
import { errorMessage, retry } from "@lacewing/common";
import { DEFAULT_TOPOLOGY_LABELS, topologyOfLabels, withTopology, type NodeTopology } from "./node-topology.js";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const ATTEMPTS = 3;
const TIMEOUT_MS = 5_000;
/** A Node object is a few KiB; anything far larger is not one. */
const MAX_NODE_BYTES = 4 * 1024 * 1024;

interface Flags {
  out: string;
  node?: string;
  baseConfig?: string;
  regionLabel: string;
  zoneLabel: string;
  apiServer?: string;
  serviceAccountDir: string;
}

/**
 * `dfdaemon node-topology`: the chart's init container. Reads the pod's own
 * Node object from the Kubernetes API (the service account may only `get`
 * nodes) and writes the daemon's config file with `idc` and `location` from
 * the node's region and zone labels, so no one types them by hand. A node
 * that cannot be read leaves the daemon without them (it still works,
 * without topology affinity) rather than keeping it from starting.
 */
export function nodeTopologyCommand(): Command {
  return new Command("node-topology")
    .description("write the daemon's config file with idc and location from this node's topology labels (the chart's init container)")
    .requiredOption("--out <file>", "config file to write (JSON, which the daemon's --config reads as YAML)")
    .option("--node <name>", "the Node's name (default: $NODE_NAME, from the downward API's spec.nodeName)")
    .option("--base-config <file>", "JSON config to start from (the chart's config values); its idc and location win over the labels")
    .option("--region-label <label>", "label whose value becomes the idc", DEFAULT_TOPOLOGY_LABELS.regionLabel)
    .option("--zone-label <label>", "label whose value, after the region, becomes the location region|zone", DEFAULT_TOPOLOGY_LABELS.zoneLabel)
    .option("--api-server <url>", "Kubernetes API (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)")
    .option("--service-account-dir <dir>", "where the service account's token and ca.crt are mounted", SERVICE_ACCOUNT_DIR)
    .action(async (flags: Flags) => {
      const node = flags.node ?? process.env["NODE_NAME"] ?? "";
      if (node === "") throw new Error("--node (or NODE_NAME) is required: the name of the node this pod runs on");
      const base = flags.baseConfig === undefined ? {} : await readJsonConfig(flags.baseConfig);
      let topology: NodeTopology = {};
      try {
        const labels = await nodeLabels(node, flags);
        topology = topologyOfLabels(labels, { regionLabel: flags.regionLabel, zoneLabel: flags.zoneLabel });
        console.log(`node ${node}: idc ${JSON.stringify(topology.idc ?? "")}, location ${JSON.stringify(topology.location ?? "")}`);
      } catch (err) {
        console.error(`dfdaemon node-topology: cannot read node ${node} (${errorMessage(err)}); the daemon starts without idc and location from its labels`);
      }
      const temp = `${flags.out}.${process.pid}.tmp`;
      await writeFile(temp, `${JSON.stringify(withTopology(base, topology), null, 2)}\n`, { mode: 0o644 });
      await rename(temp, flags.out);
    });
}

async function readJsonConfig(path: string): Promise<Record<string, unknown>> {
  const parsed: unknown = JSON.parse(await readFile(path, "utf8"));
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`--base-config ${path} must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** The Node's labels, with a few tries: at node start-up the API server may be a moment away. */
async function nodeLabels(node: string, flags: Flags): Promise<Record<string, string>> {
  const host = process.env["KUBERNETES_SERVICE_HOST"];
  const port = process.env["KUBERNETES_SERVICE_PORT"] ?? "443";
  const server = flags.apiServer ?? (host === undefined ? undefined : `https://${host.includes(":") ? `[${host}]` : host}:${port}`);
  if (server === undefined) throw new Error("no --api-server and no KUBERNETES_SERVICE_HOST: not running in a cluster?");
  const [token, ca] = await Promise.all([readFile(join(flags.serviceAccountDir, "token"), "utf8"), readFile(join(flags.serviceAccountDir, "ca.crt"))]);
  const url = new URL(`/api/v1/nodes/${encodeURIComponent(node)}`, server);
  // An answer such as 403 or 404 will be the same in a second; a connection that failed may not.
  return retry(
    async () => {
      const object = JSON.parse(await getText(url, token.trim(), ca)) as { metadata?: { labels?: Record<string, string> } };
      return object.metadata?.labels ?? {};
    },
    { attempts: ATTEMPTS, initialMs: 1_000, retryable: (err) => !(err instanceof ApiAnswer) },
  );
}

/** The API server refused (4xx): asking again will not help. */
class ApiAnswer extends Error {}

function getText(url: URL, token: string, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}`, accept: "application/json" }, ca, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_NODE_BYTES) req.destroy(new Error(`the answer is larger than ${MAX_NODE_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode === 200) resolve(body);
        else {
          const status = res.statusCode ?? 0;
          const message = `the API server answered ${status}${status === 403 ? " (the service account may not get nodes)" : ""}`;
          reject(status >= 400 && status < 500 ? new ApiAnswer(message) : new Error(message));
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}
