// Runs every compiled test file with node's test runner. Unit tests live next
// to the code as *.spec.ts; multi-process tests live under test/e2e.
// `--filter SUBSTRING` keeps only files whose path contains it.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const roots = [...readdirSync("packages").map((p) => join("packages", p, "dist")), join("test", "dist")];
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
