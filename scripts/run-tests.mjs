// Runs every compiled test file with node's test runner. Unit tests live next
// to the code as *.spec.ts; multi-process tests live under test/e2e.
// `--filter SUBSTRING` keeps only files whose path contains it. Compiled
// files whose source is gone are removed first, so a deleted spec never runs.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { projects, removeStaleOutputs } from "./compiled-outputs.mjs";

for (const file of removeStaleOutputs()) console.log(`removed ${file}: its source is gone`);
const roots = projects().map((project) => project.output);
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".spec.js")) files.push(path);
  }
}
roots.forEach(walk);
const filterAt = process.argv.indexOf("--filter");
const filter = filterAt >= 0 ? process.argv[filterAt + 1] : undefined;
const selected = files.filter((f) => filter === undefined || f.includes(filter)).sort();
if (selected.length === 0) {
  console.error("no test files found; did the build run?");
  process.exit(1);
}
const result = spawnSync(process.execPath, ["--test", "--test-reporter=spec", "--test-concurrency=2", "--test-timeout=600000", ...selected], {
  stdio: "inherit",
});
process.exit(result.status ?? 1);
