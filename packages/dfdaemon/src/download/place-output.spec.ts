import assert from "node:assert/strict";
import { constants } from "node:fs";
import { copyFile, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import { isTempOf, placeOutput, removeStaleTemps, tempPathOf } from "./place-output.js";

const HOUR = 3_600_000;
const hex = (c: string): string => c.repeat(32);

describe("placeOutput", () => {
  const dirs: string[] = [];
  after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  /** A data file in its own directory, an output directory, and a victim file outside both. */
  const setup = async (root = tmpdir()) => {
    const dir = await mkdtemp(join(root, "lacewing-place-"));
    dirs.push(dir);
    await mkdir(join(dir, "cache"));
    await mkdir(join(dir, "out"));
    const data = join(dir, "cache", "data");
    await writeFile(data, "the origin's bytes");
    const victim = join(dir, "victim");
    await writeFile(victim, "must stay as it is");
    return { dir, data, victim, output: join(dir, "out", "file.bin") };
  };
  const entries = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();

  it("hard-links the data to the output and leaves no temp file behind", async () => {
    const { data, output } = await setup();
    assert.equal(await placeOutput(data, output, { staleTempMs: HOUR }), "link");
    assert.equal((await stat(output)).ino, (await stat(data)).ino);
    assert.deepEqual(await entries(join(output, "..")), ["file.bin"]);
  });

  it("replaces a symlink at the output with a regular file and leaves the link's target alone", async () => {
    const { data, victim, output } = await setup();
    await symlink(victim, output);
    await placeOutput(data, output, { staleTempMs: HOUR });
    assert.equal((await lstat(output)).isFile(), true);
    assert.equal(await readFile(output, "utf8"), "the origin's bytes");
    assert.equal(await readFile(victim, "utf8"), "must stay as it is");
  });

  it("never follows a symlink planted at a temp name: a taken name is skipped for a fresh random one", async () => {
    const { data, victim, output } = await setup();
    const names = [hex("a"), hex("b"), hex("c"), hex("d")];
    await symlink(victim, tempPathOf(output, hex("a")));
    await symlink(join(victim, "..", "does-not-exist"), tempPathOf(output, hex("b")));
    await writeFile(tempPathOf(output, hex("c")), "someone else's file");
    const drawn: string[] = [];
    const randomPart = (): string => {
      drawn.push(names[drawn.length]!);
      return drawn.at(-1)!;
    };
    await placeOutput(data, output, { staleTempMs: HOUR, randomPart });
    assert.deepEqual(drawn, names, "three taken names, then a free one");
    assert.equal(await readFile(victim, "utf8"), "must stay as it is");
    assert.equal(await readFile(output, "utf8"), "the origin's bytes");
    assert.equal(await readlink(tempPathOf(output, hex("a"))), victim, "the planted links are left as they were (they are not stale)");
    assert.equal(await readFile(tempPathOf(output, hex("c")), "utf8"), "someone else's file");
  });

  it("gives up with LW_ERR_OUTPUT after a bounded number of taken temp names, writing nothing", async () => {
    const { data, victim, output } = await setup();
    await symlink(victim, tempPathOf(output, hex("e")));
    let draws = 0;
    await assert.rejects(
      placeOutput(data, output, {
        staleTempMs: HOUR,
        randomPart: () => {
          draws++;
          return hex("e");
        },
      }),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_OUTPUT" && /temporary names/.test(err.message),
    );
    assert.equal(draws, 8);
    await assert.rejects(lstat(output));
    assert.equal(await readFile(victim, "utf8"), "must stay as it is");
  });

  it("does not write through the old predictable temp names (.<name>.lacewing-<pid>-<ms>)", async () => {
    const { data, victim, output } = await setup();
    const now = Date.now();
    for (let ms = now - 100; ms < now + 1_000; ms++) await symlink(victim, join(output, "..", `.file.bin.lacewing-${process.pid}-${ms}`));
    await placeOutput(data, output, { staleTempMs: HOUR });
    assert.equal(await readFile(victim, "utf8"), "must stay as it is");
    assert.equal((await lstat(output)).isFile(), true);
  });

  it("keeps the old output when placing fails, and removes its temp file", async () => {
    const { data, output } = await setup();
    // rename(2) cannot replace a non-empty directory.
    await mkdir(output);
    await writeFile(join(output, "inside"), "old");
    await assert.rejects(placeOutput(data, output, { staleTempMs: HOUR }), (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_OUTPUT");
    assert.equal(await readFile(join(output, "inside"), "utf8"), "old");
    assert.deepEqual(await entries(join(output, "..")), ["file.bin"]);
  });

  it("copies across filesystems, exclusively, when a hard link cannot be made", async (t) => {
    const { data, victim } = await setup();
    let shm: string;
    try {
      shm = await mkdtemp("/dev/shm/lacewing-place-");
    } catch {
      return t.skip("no /dev/shm");
    }
    dirs.push(shm);
    if ((await stat(shm)).dev === (await stat(data)).dev) return t.skip("/dev/shm is on the cache's filesystem");
    const output = join(shm, "file.bin");
    await symlink(victim, tempPathOf(output, hex("a")));
    const names = [hex("a"), hex("f")];
    assert.equal(await placeOutput(data, output, { staleTempMs: HOUR, randomPart: () => names.shift()! }), "copy");
    assert.equal(await readFile(output, "utf8"), "the origin's bytes");
    assert.notEqual((await stat(output)).ino, (await stat(data)).ino);
    assert.equal(await readFile(victim, "utf8"), "must stay as it is");
  });

  it("fits the temp name of a long output name within NAME_MAX", async () => {
    const { data, output } = await setup();
    const long = join(output, "..", `${"é".repeat(120)}.bin`);
    await placeOutput(data, long, { staleTempMs: HOUR });
    assert.equal(await readFile(long, "utf8"), "the origin's bytes");
  });

  it("removes stale temp files of earlier runs of the same output before placing it", async () => {
    const { data, output } = await setup();
    const leftover = tempPathOf(output, hex("9"));
    await writeFile(leftover, "half a file from a crashed run");
    await placeOutput(data, output, { staleTempMs: HOUR, now: () => Date.now() + 2 * HOUR });
    assert.deepEqual(await entries(join(output, "..")), ["file.bin"]);
  });
});

describe("removeStaleTemps", () => {
  it("removes only this output's temp files older than the limit, unlinking symlinks without touching their targets", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lacewing-stale-"));
    try {
      const output = join(dir, "file.bin");
      const victim = join(dir, "victim");
      await writeFile(victim, "must stay as it is");
      const ours = [`.file.bin.lacewing-${hex("1")}.tmp`, `.file.bin.lacewing-${hex("2")}.tmp`, ".file.bin.lacewing-4242-1700000000000"];
      await writeFile(join(dir, ours[0]!), "leftover");
      await symlink(victim, join(dir, ours[1]!));
      await symlink(victim, join(dir, ours[2]!));
      const notOurs = [
        "file.bin",
        ".file.bin.lacewing-notrandom.tmp",
        `.file.bin.lacewing-${hex("3")}.tmp.keep`,
        `.other.bin.lacewing-${hex("4")}.tmp`,
        `.file.bin.lacewing-${"A".repeat(32)}.tmp`,
      ];
      for (const name of notOurs) await writeFile(join(dir, name), "not a temp of file.bin");
      // A directory with a temp's name is not something placing ever made.
      await mkdir(join(dir, `.file.bin.lacewing-${hex("5")}.tmp`));

      assert.deepEqual(await removeStaleTemps(output, HOUR, Date.now()), [], "nothing is an hour old yet");
      const removed = await removeStaleTemps(output, HOUR, Date.now() + 2 * HOUR);
      assert.deepEqual(removed.sort(), [...ours].sort());
      assert.deepEqual((await readdir(dir)).sort(), [...notOurs, `.file.bin.lacewing-${hex("5")}.tmp`, "victim"].sort());
      assert.equal(await readFile(victim, "utf8"), "must stay as it is");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("recognises exactly the temp names of one output", () => {
    const output = "/out/a.tar";
    assert.equal(isTempOf(output, `.a.tar.lacewing-${hex("0")}.tmp`), true);
    assert.equal(isTempOf(output, ".a.tar.lacewing-1-2"), true);
    assert.equal(isTempOf(output, `.a.tar.gz.lacewing-${hex("0")}.tmp`), false);
    assert.equal(isTempOf(output, `.a.tar.lacewing-${hex("0").slice(1)}.tmp`), false);
    assert.equal(isTempOf(output, `a.tar.lacewing-${hex("0")}.tmp`), false);
  });
});

describe("fs.copyFile with COPYFILE_EXCL | COPYFILE_FICLONE (the copy path)", () => {
  it("fails with EEXIST on a symlink at the destination, dangling or not, and leaves the link and its target alone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lacewing-copyfile-"));
    try {
      await writeFile(join(dir, "source"), "new bytes");
      await writeFile(join(dir, "victim"), "old bytes");
      await symlink(join(dir, "victim"), join(dir, "to-victim"));
      await symlink(join(dir, "nowhere"), join(dir, "dangling"));
      for (const name of ["to-victim", "dangling"])
        await assert.rejects(copyFile(join(dir, "source"), join(dir, name), constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE), { code: "EEXIST" });
      assert.equal(await readFile(join(dir, "victim"), "utf8"), "old bytes");
      assert.equal((await lstat(join(dir, "to-victim"))).isSymbolicLink(), true);
      assert.equal((await lstat(join(dir, "dangling"))).isSymbolicLink(), true);
      await assert.rejects(stat(join(dir, "nowhere")), { code: "ENOENT" }, "no file was created through the dangling link");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
