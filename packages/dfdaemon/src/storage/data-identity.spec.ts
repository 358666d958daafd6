import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, link, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pieceDigestOf, deferred } from "@lacewing/common";
import { editInPlace } from "../testing/edit-in-place.js";
import { DataGuard, detachDataFile } from "./data-identity.js";
import { StoredTask, type StoredPiece, type TaskMeta } from "./stored-task.js";
import { taskMeta } from "../testing/fixtures.js";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function newDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "lacewing-identity-"));
  dirs.push(dir);
  return dir;
}

describe("DataGuard", () => {
  const guarded = async (verify: () => Promise<boolean> = async () => true) => {
    const path = join(await newDir(), "data");
    await writeFile(path, "0123456789");
    const file = await open(path, "r+");
    const guard = new DataGuard({ file: () => file, verify });
    guard.seal((await guard.prepare())!);
    return { path, file, guard };
  };

  it("makes the file read-only (0444) before taking its identity", async () => {
    const { path, file } = await guarded();
    assert.equal((await stat(path)).mode & 0o777, 0o444);
    await file.close();
  });

  it("notices an in-place write whose mtime was set back, through ctime", async () => {
    const { path, file, guard } = await guarded();
    const before = await stat(path, { bigint: true });
    await editInPlace(path, 2, "XY");
    const after = await stat(path, { bigint: true });
    assert.deepEqual([after.ino, after.size, after.mtimeNs], [before.ino, before.size, before.mtimeNs], "only ctime tells");
    assert.equal(await guard.unchanged(), false);
    await file.close();
  });

  it("verifies once for concurrent callers, serves nothing meanwhile, and trusts the file again when every piece matched", async () => {
    const release = deferred<boolean>();
    let verifications = 0;
    const { path, file, guard } = await guarded(() => {
      verifications++;
      return release.promise;
    });
    await chmod(path, 0o444);
    const all = Promise.all([guard.verifyIfChanged(), guard.verifyIfChanged(), guard.verifyIfChanged()]);
    assert.equal(await guard.unchanged(), false, "not served while it is verified");
    release.resolve(true);
    await all;
    assert.equal(verifications, 1);
    assert.equal(await guard.unchanged(), true);
    assert.equal(guard.sealed, true);
    await file.close();
  });

  it("finds a change made while the pieces were verified at the next check", async () => {
    let target = "";
    const { path, file, guard } = await guarded(async () => {
      await editInPlace(target, 0, "!");
      return true;
    });
    target = path;
    await chmod(path, 0o444);
    await guard.verifyIfChanged();
    assert.equal(await guard.unchanged(), false);
    await file.close();
  });

  it("is no longer sealed once a verification dropped pieces (the task is filled again)", async () => {
    const { path, file, guard } = await guarded(async () => false);
    await editInPlace(path, 0, "!");
    await guard.verifyIfChanged();
    assert.equal(guard.sealed, false);
    assert.equal(await guard.unchanged(), true);
    await file.close();
  });

  it("adopts the ctime its own hard link gives the file, and refuses to place after a change not verified yet", async () => {
    const { path, file, guard } = await guarded();
    const dir = join(path, "..");
    assert.equal(await guard.placing(() => link(path, join(dir, "output-1"))), true);
    assert.equal(await guard.unchanged(), true, "the placement's own link is not a suspect change");
    await link(path, join(dir, "someone-elses-link"));
    let placed = false;
    assert.equal(
      await guard.placing(async () => {
        placed = true;
      }),
      false,
    );
    assert.equal(placed, false);
    await file.close();
  });
});

describe("detachDataFile", () => {
  it("moves the data to a new writable inode, so writes to it never reach a hard-linked output", async () => {
    const dir = await newDir();
    const data = join(dir, "data");
    await writeFile(data, "abcd");
    await chmod(data, 0o444);
    await link(data, join(dir, "output"));
    const file = await detachDataFile(data);
    await file.write(Buffer.from("WXYZ"), 0, 4, 0);
    await file.close();
    assert.equal(await readFile(join(dir, "output"), "utf8"), "abcd");
    assert.equal(await readFile(data, "utf8"), "WXYZ");
    assert.notEqual((await stat(data)).ino, (await stat(join(dir, "output"))).ino);
  });
});

describe("StoredTask with outputs hard-linked to its data", () => {
  const BYTES = ["aaaa", "bbbb", "cccc"];
  const meta = (): TaskMeta => taskMeta({ taskId: "t", url: "http://o/f", contentLength: 12, pieceLength: 4, createdAt: 1, lastAccessedAt: 1 });
  // The one place these tests say how a piece is checksummed.
  const pieceOf = (number: number): StoredPiece => ({ number, offset: number * 4, length: 4, sha256: pieceDigestOf(Buffer.from(BYTES[number]!)) });
  const finishedTask = async () => {
    const dir = await newDir();
    const task = await StoredTask.create(dir, meta());
    for (let n = 0; n < BYTES.length; n++) await task.writePiece(pieceOf(n), Buffer.from(BYTES[n]!));
    await task.markFinished();
    const output = join(await newDir(), "output");
    assert.equal(await task.placeData((dataPath) => link(dataPath, output)), true);
    return { dir, task, output };
  };

  it("makes a finished task's data file, and so its outputs, read-only", async () => {
    const { task, output } = await finishedTask();
    assert.equal((await stat(task.dataPath)).mode & 0o777, 0o444);
    assert.equal((await stat(output)).mode & 0o777, 0o444);
    await task.close();
  });

  it("trusts the link it placed itself: the next check is one fstat, not a re-verification", async () => {
    const { task } = await finishedTask();
    assert.equal(await task.checkUnchanged(), true);
    await task.close();
  });

  it("drops the piece an output edit changed (mtime set back), and fetching it again never writes into the edited output", async () => {
    const { task, output } = await finishedTask();
    await editInPlace(output, 5, "X");
    assert.equal(await task.checkUnchanged(), false);
    await task.verifyIfChanged();
    assert.deepEqual(
      task.pieces().map((p) => p.number),
      [0, 2],
    );
    assert.equal(task.finished, false);
    await task.writePiece(pieceOf(1), Buffer.from(BYTES[1]!));
    await task.markFinished();
    assert.deepEqual(await task.readPiece(1), Buffer.from("bbbb"));
    assert.equal(await readFile(output, "utf8"), "aaaabXbbcccc", "the output keeps its owner's edit");
    assert.notEqual((await stat(task.dataPath)).ino, (await stat(output)).ino);
    assert.equal(await task.checkUnchanged(), true);
    await task.close();
  });

  it("keeps every piece after an output is removed (a change of ctime only) and trusts the file again", async () => {
    const { task, output } = await finishedTask();
    await rm(output);
    assert.equal(await task.checkUnchanged(), false);
    await task.verifyIfChanged();
    assert.equal(task.finished, true);
    assert.equal(task.pieceCount, 3);
    assert.equal(await task.checkUnchanged(), true);
    await task.close();
  });

  it("refuses to place data that changed since it was verified and lost pieces", async () => {
    const { task, output } = await finishedTask();
    await editInPlace(output, 0, "X");
    let placed = false;
    const ok = await task.placeData(async () => {
      placed = true;
    });
    assert.deepEqual([ok, placed, task.finished], [false, false, false]);
    await task.close();
  });

  it("on reload trusts a finished task as it is, and gives one whose output was edited a new data file", async () => {
    const intact = await finishedTask();
    await intact.task.close();
    const reloaded = await StoredTask.load(intact.dir);
    assert.equal(await reloaded.checkUnchanged(), true);
    await editInPlace(intact.output, 0, "X");
    assert.equal(await reloaded.checkUnchanged(), false);
    await reloaded.close();

    const edited = await StoredTask.load(intact.dir);
    assert.equal(edited.finished, false);
    assert.equal(edited.hasPiece(0), false);
    assert.notEqual((await stat(edited.dataPath)).ino, (await stat(intact.output)).ino);
    await edited.writePiece(pieceOf(0), Buffer.from("aaaa"));
    assert.equal(await readFile(intact.output, "utf8"), "Xaaabbbbcccc");
    await edited.close();
  });

  it("reloads a finished task whose data file is read-only when the daemon is not root", async () => {
    const { dir, task } = await finishedTask();
    await task.close();
    const storedTask = join(fileURLToPath(new URL(".", import.meta.url)), "stored-task.js");
    const script = `const { StoredTask } = await import(${JSON.stringify(storedTask)});
      const task = await StoredTask.load(${JSON.stringify(dir)});
      console.log(JSON.stringify({ finished: task.finished, pieces: task.pieceCount, unchanged: await task.checkUnchanged() }));
      await task.close();`;
    // Root may open a 0444 file for writing, so as root the load runs as nobody, owning the task as a daemon user would.
    if (isRoot) await run("chown", ["-R", "65534:65534", dir]);
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], isRoot ? { uid: 65534, gid: 65534 } : {});
    assert.deepEqual(JSON.parse(stdout), { finished: true, pieces: 3, unchanged: true });
    assert.equal((await stat(join(dir, "data"))).mode & 0o777, 0o444, "read-only again once loaded");
  });
});
