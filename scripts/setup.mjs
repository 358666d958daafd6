// Installs dependencies and builds every package. Safe to run repeatedly.
// Uses a global pnpm 10 when present, otherwise fetches it through npx.
import { execFileSync, spawnSync } from "node:child_process";
import { removeStaleOutputs } from "./compiled-outputs.mjs";

function hasPnpm10() {
  const probe = spawnSync("pnpm", ["--version"], { encoding: "utf8" });
  return probe.status === 0 && probe.stdout.startsWith("10.");
}

function run(command, args) {
  execFileSync(command, args, { stdio: "inherit", env: { ...process.env, npm_config_yes: "true" } });
}

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && minor < 18)) {
  console.error(`Lacewing needs Node.js >= 20.18 (this is ${process.versions.node}).`);
  process.exit(1);
}
const pnpm = hasPnpm10() ? ["pnpm", []] : ["npx", ["-y", "pnpm@10"]];
run(pnpm[0], [...pnpm[1], "install", "--frozen-lockfile", "--reporter=silent"]);
for (const file of removeStaleOutputs()) console.log(`removed ${file}: its source is gone`);
run("npx", ["tsc", "-b"]);
