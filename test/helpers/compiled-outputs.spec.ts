import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, it } from "node:test";

/** scripts/compiled-outputs.mjs is plain JavaScript run before any build, so it is loaded by path. */
const script = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "scripts", "compiled-outputs.mjs");
const { removeStaleOutputs } = (await import(pathToFileURL(script).href)) as { removeStaleOutputs: (repo: string) => string[] };

async function touch(root: string, path: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), "");
}

describe("compiled outputs", () => {
  it("removes the outputs of a deleted source, spec or module, and keeps every other file", async () => {
    const repo = await mkdtemp(join(tmpdir(), "lacewing-outputs-"));
    try {
      await touch(repo, "packages/pkg/src/kept.ts");
      await touch(repo, "packages/pkg/src/deep/kept.spec.ts");
      await touch(repo, "test/e2e/kept.spec.ts");
      const kept = [
        "packages/pkg/dist/kept.js",
        "packages/pkg/dist/kept.d.ts",
        "packages/pkg/dist/kept.js.map",
        "packages/pkg/dist/kept.d.ts.map",
        "packages/pkg/dist/deep/kept.spec.js",
        "packages/pkg/dist/assets/logo.svg",
        "test/dist/e2e/kept.spec.js",
        "test/dist/tsconfig.tsbuildinfo",
      ];
      const stale = ["packages/pkg/dist/gone.js", "packages/pkg/dist/gone.d.ts.map", "packages/pkg/dist/deep/gone.spec.js", "test/dist/e2e/gone.spec.js"];
      for (const path of [...kept, ...stale]) await touch(repo, path);

      const removed = removeStaleOutputs(repo).map((path) => relative(repo, path));
      assert.deepEqual(removed.sort(), [...stale].sort());
      const left = (await readdir(repo, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => relative(repo, join(entry.parentPath, entry.name)))
        .filter((path) => path.includes("dist"));
      assert.deepEqual(left.sort(), [...kept].sort());
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });
});
