import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { GrpcStatus, RpcError } from "@lacewing/api";
import { ErrorCode, LacewingError, MAX_TIMER_MS } from "@lacewing/common";
import {
  clientDeadlineMs,
  daemonWentAway,
  download,
  type DownloadInit,
  type DownloadProgressEvent,
  type DownloadReconnectEvent,
  type DownloadStartedEvent,
} from "./download.js";
import { FAKE_CONTENT, FakeDfdaemon } from "./testing/fake-dfdaemon.js";

describe("clientDeadlineMs", () => {
  it("gives the daemon a little longer than its own deadline", () => {
    assert.equal(clientDeadlineMs(10_000), 11_000);
    assert.equal(clientDeadlineMs(3_600_000), 3_605_000);
  });

  it("never sets a timer beyond the limit, where it would fire at once", () => {
    assert.equal(clientDeadlineMs(MAX_TIMER_MS), MAX_TIMER_MS);
    assert.equal(clientDeadlineMs(MAX_TIMER_MS - 1_000), MAX_TIMER_MS);
  });
});

describe("download when the daemon goes away mid-way", () => {
  let dir: string;
  let socket: string;
  let daemon: FakeDfdaemon;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "dfget-reconnect-"));
    socket = join(dir, "d.sock");
    daemon = new FakeDfdaemon();
    await daemon.start(socket);
  });

  afterEach(async () => {
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  });

  const request = (scenario: string): DownloadInit => ({
    url: `http://origin.test/${scenario}/file.bin`,
    outputPath: join(dir, "out.bin"),
    requestHeaders: { authorization: "Bearer secret" },
    timeoutMs: 0n,
  });

  /** Resolves once the first call reported progress, so the kill lands mid-download. */
  function halfway(progress: DownloadProgressEvent[]): Promise<void> {
    return new Promise((resolve) => {
      const check = setInterval(() => {
        if (progress.length > 0) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });
  }

  it("waits for the restarted daemon, re-issues the same request and carries on from what it held", async () => {
    const started: DownloadStartedEvent[] = [];
    const progress: DownloadProgressEvent[] = [];
    const reconnecting: DownloadReconnectEvent[] = [];
    const running = download(request("resume"), {
      socket,
      reconnectTimeoutMs: 10_000,
      onStarted: (event) => started.push(event),
      onProgress: (event) => progress.push(event),
      onReconnecting: (event) => reconnecting.push(event),
    });
    await halfway(progress);
    await daemon.kill();
    // Down for a moment, socket gone, as a restarting daemon is.
    await sleep(300);
    await daemon.start(socket);
    const result = await running;

    assert.equal(result.reconnects, 1);
    assert.equal(reconnecting.length, 1);
    assert.equal(reconnecting[0]?.waitMs, 10_000);
    assert.equal(daemon.received.length, 2, "one re-issued call");
    const [first, second] = daemon.received.map((call) => call.download);
    assert.equal(second?.url, first?.url);
    assert.equal(second?.outputPath, first?.outputPath);
    assert.deepEqual(second?.requestHeaders, { authorization: "Bearer secret" }, "the headers travel again: the daemon never stores them");
    assert.equal(started.length, 1, "started is reported once");
    const bytes = progress.map((event) => event.completedBytes);
    assert.deepEqual(
      bytes,
      [...bytes].sort((a, b) => a - b),
      "progress never goes back",
    );
    assert.equal(bytes.at(-1), FAKE_CONTENT.length);
    assert.deepEqual(result.traffic, { origin: FAKE_CONTENT.length / 2, peers: 0, cache: FAKE_CONTENT.length / 2 });
    assert.deepEqual(await readFile(join(dir, "out.bin")), FAKE_CONTENT);
  });

  it("fails with LW_ERR_NO_DAEMON once the daemon stayed away for the reconnect timeout", async () => {
    const progress: DownloadProgressEvent[] = [];
    const running = download(request("resume"), { socket, reconnectTimeoutMs: 400, onProgress: (event) => progress.push(event) });
    const outcome = assert.rejects(running, (err: unknown) => {
      assert.ok(err instanceof LacewingError);
      assert.equal(err.code, ErrorCode.noDaemon);
      assert.match(err.message, /not back within 400ms/);
      return true;
    });
    await halfway(progress);
    const lostAt = Date.now();
    await daemon.kill();
    await outcome;
    assert.ok(Date.now() - lostAt < 5_000, "the wait is bounded");
  });

  it("fails at once without a reconnect timeout", async () => {
    const progress: DownloadProgressEvent[] = [];
    const running = download(request("resume"), { socket, onProgress: (event) => progress.push(event) });
    const outcome = assert.rejects(running, (err: unknown) => err instanceof RpcError && err.transport);
    await halfway(progress);
    await daemon.kill();
    await outcome;
  });

  it("stops at once on Ctrl-C while it waits for the daemon", async () => {
    const interrupt = new AbortController();
    const progress: DownloadProgressEvent[] = [];
    const running = download(request("resume"), {
      socket,
      signal: interrupt.signal,
      reconnectTimeoutMs: 60_000,
      onProgress: (event) => progress.push(event),
      onReconnecting: () => interrupt.abort(),
    });
    const outcome = assert.rejects(running, (err: unknown) => err instanceof LacewingError && err.code === ErrorCode.cancelled);
    await halfway(progress);
    const lostAt = Date.now();
    await daemon.kill();
    await outcome;
    assert.ok(Date.now() - lostAt < 2_000, "not after the reconnect timeout");
  });

  it("does not re-issue a download the daemon failed with an error of its own", async () => {
    await assert.rejects(
      download(request("origin-404"), { socket, reconnectTimeoutMs: 10_000 }),
      (err: unknown) => err instanceof RpcError && err.code === ErrorCode.originStatus,
    );
    assert.equal(daemon.received.length, 1);
  });
});

describe("daemonWentAway", () => {
  it("counts transport failures and a vanished socket, never an error the daemon labelled", () => {
    assert.equal(daemonWentAway(new RpcError(GrpcStatus.UNAVAILABLE, "Connection dropped")), true);
    assert.equal(daemonWentAway(new RpcError(GrpcStatus.CANCELLED, "cancelled")), true);
    assert.equal(daemonWentAway(new LacewingError(ErrorCode.noDaemon, "unavailable", "cannot reach /s.sock (ENOENT)")), true);
    assert.equal(daemonWentAway(new RpcError(GrpcStatus.UNAVAILABLE, "cannot reach origin", ErrorCode.originUnreachable)), false);
    assert.equal(daemonWentAway(new RpcError(GrpcStatus.INTERNAL, "internal error")), false);
    assert.equal(daemonWentAway(new Error("boom")), false);
  });
});
