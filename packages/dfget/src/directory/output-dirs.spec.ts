import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import { prepareOutputPath } from "./output-dirs.js";

describe("prepareOutputPath", () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "dfget-dirs-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("creates the key's directories below the root and returns the output path", async () => {
    const root = await mkdtemp(join(base, "root-"));
    assert.equal(await prepareOutputPath(root, "a/b/c.bin"), join(root, "a", "b", "c.bin"));
    assert.ok((await lstat(join(root, "a", "b"))).isDirectory());
    assert.equal(await prepareOutputPath(root, "top.bin"), join(root, "top.bin"));
  });

  it("refuses to go through a symlinked directory planted below the root, and creates nothing at its target", async () => {
    const root = await mkdtemp(join(base, "root-"));
    const outside = await mkdtemp(join(base, "outside-"));
    await symlink(outside, join(root, "a"));
    await assert.rejects(
      prepareOutputPath(root, "a/b/passwd"),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_OUTPUT" && /^a\/b\/passwd: .*a is a symlink/.test(err.message),
    );
    assert.deepEqual(await readdir(outside), []);
    // A dangling link fails the same way (mkdir sees it exists; lstat sees a link).
    await symlink(join(base, "nowhere"), join(root, "d"));
    await assert.rejects(prepareOutputPath(root, "d/x"), /d is a symlink/);
  });

  it("refuses a file where a directory is needed and a directory where the file goes", async () => {
    const root = await mkdtemp(join(base, "root-"));
    await writeFile(join(root, "f"), "x");
    await assert.rejects(prepareOutputPath(root, "f/x"), /f is not a directory/);
    await mkdir(join(root, "dir"));
    await assert.rejects(prepareOutputPath(root, "dir"), /dir is a directory/);
  });
});
