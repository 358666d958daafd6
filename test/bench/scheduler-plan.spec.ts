import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BenchHelp, BenchUsageError, SCHEDULER_BOUNDS, hostOfPeer, layoutOf, parseBenchOptions, summarize } from "./scheduler-plan.js";

const base = ["--hosts", "100", "--tasks", "10", "--peers-per-task", "5", "--pieces", "8"];

describe("scheduler bench flags", () => {
  it("takes the required flags and fills in the rest", () => {
    const options = parseBenchOptions([...base, "--json"], 2);
    assert.deepEqual(options, { hosts: 100, tasks: 10, peersPerTask: 5, pieces: 8, replicas: 1, workers: 4, probes: 10, downloads: 40, json: true, pin: true });
    assert.equal(parseBenchOptions([...base, "--replicas", "2", "--no-pin", "--workers", "3"], 1).replicas, 2);
    assert.equal(parseBenchOptions([...base, "--downloads", "7"], 1).downloads, 7);
  });

  it("answers --help with the usage, not an error", () => {
    assert.throws(
      () => parseBenchOptions(["--help"], 2),
      (err: unknown) => err instanceof BenchHelp && /--peers-per-task P/.test(err.message),
    );
  });

  it("refuses a missing, malformed or out-of-range flag, naming it", () => {
    const refused = (args: string[], pattern: RegExp): void =>
      assert.throws(
        () => parseBenchOptions(args, 2),
        (err: unknown) => err instanceof BenchUsageError && pattern.test(err.message),
      );
    refused(["--hosts", "100", "--tasks", "10", "--pieces", "8"], /--peers-per-task is required/);
    refused([...base, "--replicas", "two"], /--replicas must be a whole number/);
    refused([...base, "--replicas", "1.5"], /--replicas must be a whole number/);
    refused([...base.slice(0, 6), "--pieces", "0"], /--pieces must be a whole number from 1/);
    refused([...base.slice(0, 6), "--pieces", String(SCHEDULER_BOUNDS.pieces + 1)], /--pieces/);
    refused(["--hosts", "5", "--tasks", "1", "--peers-per-task", "5", "--pieces", "1"], /--peers-per-task must be a whole number from 2 to 4/);
    refused([...base, "--host", "3"], /Unknown option '--host'/);
    refused([...base, "extra"], /Unexpected argument 'extra'/);
    refused(["--hosts", "3", "--tasks", "30000", "--peers-per-task", "2", "--pieces", "1"], /30000 peers a host; the scheduler allows 20000/);
    refused(["--hosts", "2", "--tasks", "1", "--peers-per-task", "2", "--pieces", "1"], /--hosts must be a whole number from 3/);
  });
});

describe("scheduler bench layout", () => {
  it("puts the peers of a task (and its probe) on different hosts and spreads the origin fetchers", () => {
    for (const [hosts, tasks, peersPerTask] of [
      [100, 10, 5],
      [1000, 1000, 20],
      [21, 50, 20],
      [10_000, 2500, 20],
    ] as const) {
      const options = { hosts, peersPerTask };
      for (let task = 0; task < tasks; task++) {
        const onHosts = new Set(Array.from({ length: peersPerTask + 1 }, (_, index) => hostOfPeer(task, index, options)));
        assert.equal(onHosts.size, peersPerTask + 1, `task ${task} of ${tasks} on ${hosts} hosts`);
      }
      const sources = new Set(Array.from({ length: tasks }, (_, task) => hostOfPeer(task, 0, options)));
      assert.equal(sources.size, Math.min(tasks, hosts));
    }
  });

  it("keeps each connection within the scheduler's hosts per owner and streams per connection", () => {
    for (const [hosts, tasks, peersPerTask] of [
      [1000, 1000, 20],
      [10_000, 2500, 20],
      [100, 5000, 2],
    ] as const) {
      const layout = layoutOf({ hosts, tasks, peersPerTask, workers: 3 });
      assert.ok(layout.hostsPerConnection <= SCHEDULER_BOUNDS.hostsPerOwner);
      const streams = new Map<number, number>();
      for (let task = 0; task < tasks; task++)
        for (let index = 0; index <= peersPerTask; index++) {
          const connection = layout.connectionOfHost(hostOfPeer(task, index, { hosts, peersPerTask }));
          streams.set(connection, (streams.get(connection) ?? 0) + 1);
        }
      assert.ok(Math.max(...streams.values()) <= SCHEDULER_BOUNDS.streamsPerConnection, `${hosts} hosts: ${Math.max(...streams.values())} streams`);
      assert.equal(layout.connections, Math.ceil(hosts / layout.hostsPerConnection));
    }
  });

  it("summarizes latencies by nearest rank", () => {
    const latencies = Array.from({ length: 200 }, (_, i) => 200 - i);
    assert.deepEqual(summarize(latencies), { samples: 200, p50: 100, p99: 198, max: 200 });
    assert.deepEqual(summarize([]), { samples: 0, p50: 0, p99: 0, max: 0 });
  });
});
