// Fails when regenerating packages/api from proto/ changes anything.
import { execFileSync } from "node:child_process";

execFileSync("npx", ["buf", "lint"], { stdio: "inherit" });
execFileSync("npx", ["buf", "generate"], { stdio: "inherit" });
const changed = execFileSync("git", ["status", "--porcelain", "--", "packages/api/src/gen"], { encoding: "utf8" });
if (changed.trim() !== "") {
  console.error("generated code is out of date with proto/; run `npm run generate` and commit:\n" + changed);
  process.exit(1);
}
console.log("generated code matches proto/");
