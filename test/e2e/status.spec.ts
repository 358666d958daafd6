// `dfdaemon status`: the first command an operator runs on a node where pulls are slow.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { taskIdOf } from "@lacewing/common";
import { dfget, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { BIN, freePorts, runCommand } from "../helpers/processes.js";

const SIZE = 3 * 1024 * 1024 + 11;

describe("dfdaemon status", () => {
  let root: string;
  let origin: TestOrigin;
  let scheduler: SchedulerProcess;
  let daemon: Daemon;
  let deadScheduler: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-status-"));
    origin = new TestOrigin({ "/file.bin": randomBytesOf(SIZE, 81) });
    await origin.start();
    scheduler = await startScheduler();
    // An address where nothing listens: a port that was free a moment ago.
    deadScheduler = `127.0.0.1:${(await freePorts(1))[0]!}`;
    daemon = await startPeer(root, "node", `${scheduler.address},${deadScheduler}`);
    await waitForHosts(scheduler.address, 1);
  });

  after(async () => {
    await daemon?.stop();
    await scheduler?.stop();
    await origin?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("says in one line on stderr, exit code 1, when no daemon answers on the socket", async () => {
    const result = await runCommand(BIN.dfdaemon, ["status", "--socket", join(root, "nobody.sock")]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^dfdaemon: no dfdaemon answers on \S+nobody\.sock: .+\n$/);
  });

  it("shows the schedulers it reaches and the one it does not, its cache, and the last failures without query strings", async () => {
    assert.equal((await dfget(daemon, origin.url("/file.bin"), join(root, "file.out"))).code, 0);
    const failed = await dfget(daemon, origin.url("/missing.bin?X-Amz-Signature=s3cr3t"), join(root, "missing.out"));
    assert.notEqual(failed.code, 0);

    const text = await runCommand(BIN.dfdaemon, ["status", "--socket", daemon.socket]);
    assert.equal(text.code, 0, "one scheduler is reachable");
    const lines = text.stdout.split("\n");
    assert.match(lines[0] ?? "", /^dfdaemon \S+ up \d+s, host \S+$/);
    assert.ok(lines.includes(`  ${scheduler.address}  reachable`), text.stdout);
    // The cause, not grpc-js's wrapping of it.
    assert.ok(lines.includes(`  ${deadScheduler}  UNREACHABLE: connect ECONNREFUSED ${deadScheduler}`), text.stdout);
    assert.ok(
      lines.some((line) => /^cache: 3\.0 MiB in 1 tasks, 0 downloading$/.test(line)),
      text.stdout,
    );
    const failure = lines.slice(lines.indexOf("recent failures:") + 1).find((line) => line.includes("/missing.bin"));
    assert.match(failure ?? "", /^ {2}\d{4}-\d\d-\d\dT\S+Z {2}http:\/\/127\.0\.0\.1:\d+\/missing\.bin {2}.*404/, text.stdout);
    assert.doesNotMatch(text.stdout, /s3cr3t/);

    const json = await runCommand(BIN.dfdaemon, ["status", "--socket", daemon.socket, "--json"]);
    const status = JSON.parse(json.stdout) as {
      up: boolean;
      schedulers: { address: string; reachable: boolean }[];
      cache: { bytes: number; tasks: number };
      activeDownloads: number;
      recentFailures: { taskId: string; url: string; description: string }[];
    };
    assert.equal(status.up, true);
    const reachable = Object.fromEntries(status.schedulers.map((s) => [s.address, s.reachable]));
    assert.deepEqual(reachable, { [scheduler.address]: true, [deadScheduler]: false });
    assert.deepEqual(status.cache, { bytes: SIZE, quotaBytes: 0, tasks: 1 });
    assert.equal(status.activeDownloads, 0);
    assert.equal(status.recentFailures.at(-1)?.url, origin.url("/missing.bin"));
    assert.equal(status.recentFailures.at(-1)?.taskId, taskIdOf({ url: origin.url("/missing.bin?X-Amz-Signature=s3cr3t") }), "the failed task's id");
    assert.match(status.recentFailures.at(-1)?.description ?? "", /404/);
  });
});
