// Local demo: an origin serving a generated 256 MiB file, a dfdaemon, and two
// dfget runs — the first from the origin, the second from the daemon's cache.
// Everything lives under .demo/ and stops when the demo ends.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const root = resolve(".demo");
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const size = 256 * 1024 * 1024;
const content = Buffer.concat(Array.from({ length: size / (16 * 1024 * 1024) }, () => randomBytes(16 * 1024 * 1024)));
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
const socket = join(root, "dfdaemon.sock");
const daemon = spawn(process.execPath, ["packages/dfdaemon/bin/dfdaemon.js", "--data-dir", join(root, "data"), "--socket", socket, "--log-level", "warn"], {
  stdio: "inherit",
});
for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(100);

function runDfget(args) {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.once("close", (status) => resolvePromise({ status, stdout, stderr }));
  });
}

const expected = `sha256:${createHash("sha256").update(content).digest("hex")}`;
console.log(`origin: ${url} (256 MiB, ${expected.slice(0, 19)}…)`);
console.log(`daemon: socket ${socket}, cache ${join(root, "data")}\n`);
for (const name of ["first.bin", "second.bin"]) {
  const before = originBytes;
  const started = Date.now();
  // Not spawnSync: the origin lives in this process and must keep serving.
  const run = await runDfget(["packages/dfget/bin/dfget.js", url, "-O", join(root, name), "--socket", socket, "--digest", expected, "--json"]);
  if (run.status !== 0) {
    console.error(run.stderr.trim());
    process.exitCode = 1;
    break;
  }
  const result = JSON.parse(run.stdout);
  const seconds = (Date.now() - started) / 1000;
  console.log(`dfget ${name}: ${seconds.toFixed(2)} s, ${(size / 1048576 / seconds).toFixed(0)} MiB/s, digest verified`);
  console.log(
    `  bytes from origin ${result.traffic.origin}, from peers ${result.traffic.peers}, from cache ${result.traffic.cache}; origin sent ${originBytes - before}`,
  );
}
console.log(
  `\nSame content: ${
    createHash("sha256")
      .update(readFileSync(join(root, "second.bin")))
      .digest("hex") === expected.slice(7)
  }`,
);
daemon.kill("SIGTERM");
origin.close();
