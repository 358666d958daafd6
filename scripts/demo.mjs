// Local demo cluster on loopback: an origin serving a generated 256 MiB file,
// a scheduler, a seed peer and three node dfdaemons. All three nodes dfget
// the file at once: the seed fetches it from the origin once, the nodes feed
// each other. Then a node downloads it again from its cache.
// Every process runs with TLS: a cluster CA made for the demo issues each its
// certificate (`lacewing-manager certs` does the same from the shell).
// Everything lives under .demo/ and stops when the demo ends.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalPki } from "../packages/common/dist/index.js";

const root = resolve(".demo");
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const MiB = 1024 * 1024;
const size = 256 * MiB;
const content = Buffer.concat(Array.from({ length: size / (16 * MiB) }, () => randomBytes(16 * MiB)));
const expected = `sha256:${createHash("sha256").update(content).digest("hex")}`;
let originBytes = 0;

const origin = createServer((req, res) => {
  const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
  if (!range) {
    res.writeHead(200, { "content-length": size });
    originBytes += size;
    return res.end(content);
  }
  const start = Number(range[1]);
  const end = Math.min(Number(range[2]), size - 1);
  res.writeHead(206, { "content-range": `bytes ${start}-${end}/${size}`, "content-length": end - start + 1 });
  originBytes += end - start + 1;
  res.end(content.subarray(start, end + 1));
});
await new Promise((r) => origin.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${origin.address().port}/demo.bin`;

const children = [];
function start(bin, args) {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "inherit", "inherit"] });
  children.push(child);
  return child;
}
function stopAll() {
  for (const child of children) child.kill("SIGTERM");
  origin.close();
}
process.once("SIGINT", () => {
  stopAll();
  process.exit(130);
});

const pki = new LocalPki();
const tlsDir = (role, name) => pki.writeTlsDir(join(root, "tls", name), role, name);

const schedulerPort = await new Promise((r) => {
  const probe = createTcpServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => r(port));
  });
});
const scheduler = `127.0.0.1:${schedulerPort}`;
start("packages/scheduler/bin/lacewing-scheduler.js", [
  ...["--listen", scheduler, "--metrics-port", "0", "--log-level", "warn", "--tls-dir", await tlsDir("scheduler", "scheduler")],
]);

const nodes = ["seed", "node-1", "node-2", "node-3"].map((name) => ({ name, socket: join(root, name, "dfdaemon.sock") }));
for (const node of nodes) {
  mkdirSync(join(root, node.name), { recursive: true });
  start("packages/dfdaemon/bin/dfdaemon.js", [
    ...(node.name === "seed" ? ["--seed"] : []),
    ...["--scheduler", scheduler, "--data-dir", join(root, node.name, "data"), "--socket", node.socket, "--advertise-ip", "127.0.0.1"],
    ...["--listen-ip", "127.0.0.1", "--peer-port", "0", "--upload-port", "0", "--proxy-port", "0", "--metrics-port", "0", "--log-level", "warn"],
    ...["--tls-dir", await tlsDir(node.name === "seed" ? "seed" : "peer", node.name)],
    // The demo's origin is on this machine's loopback, which real nodes never fetch from.
    "--allow-loopback-origins",
  ]);
}
for (const node of nodes) for (let i = 0; i < 100 && !existsSync(node.socket); i++) await sleep(100);
await sleep(1_500); // the daemons announce themselves to the scheduler

function dfget(node, name) {
  return new Promise((resolvePromise) => {
    // Not spawnSync: the origin lives in this process and must keep serving.
    const child = spawn(
      process.execPath,
      ["packages/dfget/bin/dfget.js", url, "-O", join(root, node.name, name), "--socket", node.socket, "--digest", expected, "--json"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const started = Date.now();
    child.once("close", (status) => resolvePromise({ node, status, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
}

function report(run) {
  if (run.status !== 0) {
    console.error(`${run.node.name}: ${run.stderr.trim()}`);
    process.exitCode = 1;
    return;
  }
  const { traffic } = JSON.parse(run.stdout);
  const mib = (n) => `${(n / MiB).toFixed(0)} MiB`;
  console.log(
    `  ${run.node.name}: ${run.seconds.toFixed(2)} s, digest verified; from origin ${mib(traffic.origin)}, peers ${mib(traffic.peers)}, cache ${mib(traffic.cache)}`,
  );
}

console.log(`origin    ${url} (256 MiB, ${expected.slice(0, 19)}…)`);
console.log(`scheduler ${scheduler}; seed peer + 3 nodes under ${root}, all over mutual TLS (certificates in ${join(root, "tls")})\n`);
console.log("three nodes download the file at once:");
const before = originBytes;
for (const run of await Promise.all(nodes.slice(1).map((node) => dfget(node, "first.bin")))) report(run);
console.log(`  the origin sent ${((originBytes - before) / MiB).toFixed(1)} MiB for 3 × 256 MiB delivered\n`);

console.log("node-1 downloads it again:");
const again = originBytes;
report(await dfget(nodes[1], "second.bin"));
console.log(`  the origin sent ${originBytes - again} bytes`);
stopAll();
