import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventQueue } from "../engine/event-queue.js";
import { Fabric } from "./uplink.js";

const close = (actual: number, expected: number, what: string): void => assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`);

describe("Uplink", () => {
  it("carries one flow in size / rate", () => {
    const events = new EventQueue();
    const link = new Fabric(events).uplink(1_000);
    let done = Number.NaN;
    link.send(250_000, (flow) => (done = flow.endedAt));
    events.runUntilIdle();
    close(done, 250, "end");
    assert.equal(link.bytesSent, 250_000);
    close(link.busyMs, 250, "busy");
  });

  it("shares the rate equally between flows that overlap", () => {
    const events = new EventQueue();
    const link = new Fabric(events).uplink(100);
    const ends: number[] = [];
    link.send(1_000, (flow) => ends.push(flow.endedAt));
    link.send(1_000, (flow) => ends.push(flow.endedAt));
    events.runUntilIdle();
    // Two flows at 50 bytes/ms each: both take 20 ms, not 10.
    close(ends[0]!, 20, "first");
    close(ends[1]!, 20, "second");
  });

  it("gives a flow the whole rate again once the other ended", () => {
    const events = new EventQueue();
    const link = new Fabric(events).uplink(100);
    let short = Number.NaN;
    let long = Number.NaN;
    link.send(500, (flow) => (short = flow.endedAt));
    link.send(1_500, (flow) => (long = flow.endedAt));
    events.runUntilIdle();
    // Both at 50/ms until the short one has its 500 (10 ms); the long one's last 1 000 at 100/ms.
    close(short, 10, "short");
    close(long, 20, "long");
  });

  it("slows a flow down when another joins midway", () => {
    const events = new EventQueue();
    const link = new Fabric(events).uplink(10);
    let first = Number.NaN;
    let second = Number.NaN;
    link.send(100, (flow) => (first = flow.endedAt));
    events.at(5, () => link.send(100, (flow) => (second = flow.endedAt)));
    events.runUntilIdle();
    // 50 bytes alone by t=5, then 5/ms each: the first ends at 15, the second has 50 left and ends at 20.
    close(first, 15, "first");
    close(second, 20, "second");
  });

  it("keeps links independent: a busy uplink does not slow another", () => {
    const events = new EventQueue();
    const fabric = new Fabric(events);
    const a = fabric.uplink(10);
    const b = fabric.uplink(10);
    let endB = Number.NaN;
    for (let i = 0; i < 5; i++) a.send(100, () => undefined);
    b.send(100, (flow) => (endB = flow.endedAt));
    events.runUntilIdle();
    close(endB, 10, "b");
  });

  it("slows every link by the same factor when the shared CPU is short", () => {
    const events = new EventQueue();
    // Two links of 10 bytes/ms whose flows cost 0.1 CPU-ms per byte: 2 cores needed, 1 there.
    const fabric = new Fabric(events, { cores: 1 });
    const a = fabric.uplink(10);
    const b = fabric.uplink(10);
    let endA = Number.NaN;
    let endB = Number.NaN;
    a.send(100, (flow) => (endA = flow.endedAt), 0.1);
    b.send(100, (flow) => (endB = flow.endedAt), 0.1);
    events.runUntilIdle();
    close(endA, 20, "a");
    close(endB, 20, "b");
    close(fabric.cpuBusyMs, 20, "cpu busy");
  });

  it("refuses empty flows and rates that are not positive", () => {
    const fabric = new Fabric(new EventQueue());
    assert.throws(() => fabric.uplink(0), RangeError);
    assert.throws(() => fabric.uplink(1).send(0, () => undefined), RangeError);
  });
});

describe("Uplink over long runs", () => {
  it("ends every flow when virtual time is large enough for rounding to matter", () => {
    const events = new EventQueue();
    const link = new Fabric(events).uplink(125_000);
    let ended = 0;
    let started = 0;
    // Thousands of 32 MiB pieces, three at a time, as a seed sends a 10 GiB task several times over.
    const piece = 32 * 1024 * 1024 * 1.05;
    const sendNext = (): void => {
      if (started >= 3_000) return;
      started++;
      link.send(piece, () => {
        ended++;
        sendNext();
      });
    };
    for (let i = 0; i < 3; i++) sendNext();
    const before = events.processed;
    events.runUntilIdle();
    assert.equal(ended, 3_000);
    assert.ok(events.processed - before < 20_000, `${events.processed - before} events for 3 000 flows`);
    close(events.now, (3_000 * piece) / 125_000, "the link ran at its rate the whole time");
  });
});
