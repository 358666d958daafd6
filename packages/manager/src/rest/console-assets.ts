import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * Where the web console's files are: packages/console's `public/` (the page
 * and its styles) and `dist/` (its scripts, compiled by tsc -b). Found beside
 * this package rather than through a dependency, because the console
 * depends on the manager for the API's types. Empty when the console is not
 * built (then `/` answers 404 and the API works as ever).
 */
export function consoleDirs(): string[] {
  const root = new URL("../../../console/", import.meta.url);
  const dirs = [fileURLToPath(new URL("public/", root)), fileURLToPath(new URL("dist/", root))];
  return existsSync(new URL("dist/main.js", root)) ? dirs : [];
}
