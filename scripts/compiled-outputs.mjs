// Where each TypeScript project compiles to, and the outputs whose source is gone.
// `tsc -b` never deletes an output: a spec removed from the sources would keep
// running from dist, and a removed module would stay importable there.
import { readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** Every project: its source root and its output root (tsc's rootDir and outDir). */
export function projects(repo = ".") {
  const packages = readdirSync(join(repo, "packages")).map((name) => ({
    source: join(repo, "packages", name, "src"),
    output: join(repo, "packages", name, "dist"),
  }));
  return [...packages, { source: join(repo, "test"), output: join(repo, "test", "dist") }];
}

const OUTPUT_SUFFIXES = [".d.ts.map", ".js.map", ".d.ts", ".js"];

/** The source a compiled file came from, or undefined when the file is not one of tsc's outputs. */
function sourceCandidates(sourceRoot, relativeOutput) {
  const suffix = OUTPUT_SUFFIXES.find((s) => relativeOutput.endsWith(s));
  if (suffix === undefined) return undefined;
  const stem = relativeOutput.slice(0, -suffix.length);
  return [`${stem}.ts`, `${stem}.tsx`, `${stem}.mts`].map((name) => join(sourceRoot, name));
}

function exists(path) {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function filesUnder(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

/** Compiled files (.js, .d.ts and their maps) under each output root whose source no longer exists. */
export function staleOutputs(repo = ".") {
  return projects(repo).flatMap(({ source, output }) =>
    filesUnder(output).filter((file) => {
      const candidates = sourceCandidates(source, relative(output, file));
      return candidates !== undefined && !candidates.some(exists);
    }),
  );
}

/** Deletes the stale outputs and returns their paths. */
export function removeStaleOutputs(repo = ".") {
  const stale = staleOutputs(repo);
  for (const file of stale) rmSync(file, { force: true });
  return stale;
}
