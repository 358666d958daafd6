import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createProgressRenderer, etaSeconds, formatElapsed, formatEta, formatProgressLine, formatRate, formatSummary } from "./progress.js";

const MiB = 1024 * 1024;

function fakeTerminal(columns?: number): { writes: string[]; stream: { write(chunk: string): void; columns?: number } } {
  const writes: string[] = [];
  return { writes, stream: { write: (chunk) => void writes.push(chunk), ...(columns === undefined ? {} : { columns }) } };
}

describe("progress formatting", () => {
  it("formats rates in binary units per second", () => {
    assert.equal(formatRate(0), "0 B/s");
    assert.equal(formatRate(1536), "1.5 KiB/s");
    assert.equal(formatRate(12.5 * MiB), "12.5 MiB/s");
  });

  it("formats ETA as m:ss or h:mm:ss, rounding up, and --:-- when unknown", () => {
    assert.equal(formatEta(0), "0:00");
    assert.equal(formatEta(4.2), "0:05");
    assert.equal(formatEta(125), "2:05");
    assert.equal(formatEta(3 * 3600 + 61), "3:01:01");
    assert.equal(formatEta(undefined), "--:--");
    assert.equal(formatEta(Infinity), "--:--");
  });

  it("computes ETA from remaining bytes and rate, and none without a total or a rate", () => {
    assert.equal(etaSeconds(25 * MiB, 100 * MiB, 5 * MiB), 15);
    assert.equal(etaSeconds(10, -1, 5), undefined);
    assert.equal(etaSeconds(10, 100, 0), undefined);
    assert.equal(etaSeconds(10, 100, undefined), undefined);
  });

  it("draws bar, percent, bytes done/total, rate and ETA", () => {
    const line = formatProgressLine({ completedBytes: 25 * MiB, totalBytes: 100 * MiB, bytesPerSecond: 5 * MiB, etaSeconds: 15 });
    assert.equal(line, "[######------------------]  25%  25.0 MiB / 100.0 MiB  5.0 MiB/s  ETA 0:15");
  });

  it("drops bar, percent and ETA while the total is unknown", () => {
    assert.equal(formatProgressLine({ completedBytes: 2048, totalBytes: -1, bytesPerSecond: undefined, etaSeconds: undefined }), "2.0 KiB  -- B/s");
  });

  it("formats elapsed time for the summary", () => {
    assert.equal(formatElapsed(850), "850ms");
    assert.equal(formatElapsed(2345), "2.3s");
    assert.equal(formatElapsed(245_000), "4m05s");
  });

  it("summarises size, time, rate and bytes by source", () => {
    const summary = formatSummary({
      taskId: "t",
      url: "http://x/y",
      output: "/tmp/y",
      contentLength: 10 * MiB,
      digest: "",
      elapsedMs: 2000,
      traffic: { origin: 2 * MiB, peers: 8 * MiB, cache: 0 },
      reconnects: 0,
    });
    assert.equal(summary, "saved /tmp/y: 10.0 MiB in 2.0s, 5.0 MiB/s (origin 2.0 MiB, peers 8.0 MiB, cache 0 B)");
  });
});

describe("progress renderer", () => {
  it("redraws at most once per 100 ms, in place", () => {
    let now = 0;
    const { writes, stream } = fakeTerminal();
    const bar = createProgressRenderer({ stream, now: () => now });
    bar.update(0, 100 * MiB);
    for (let i = 1; i <= 9; i++) {
      now += 10;
      bar.update(i * MiB, 100 * MiB);
    }
    assert.equal(writes.length, 1, "updates within 100 ms of a redraw are not drawn");
    now = 100;
    bar.update(10 * MiB, 100 * MiB);
    assert.equal(writes.length, 2);
    assert.ok(
      writes.every((w) => w.startsWith("\r\x1b[K")),
      "each redraw returns to column 0 and clears the line",
    );
  });

  it("shows the rate over the recent window and the ETA it implies", () => {
    let now = 0;
    const { writes, stream } = fakeTerminal();
    const bar = createProgressRenderer({ stream, now: () => now, rateWindowMs: 1000 });
    // 1 MiB/s for 10 s, then 4 MiB/s: the window forgets the slow start.
    for (let second = 0; second <= 10; second++) {
      now = second * 1000;
      bar.update(second * MiB, 100 * MiB);
    }
    assert.match(writes.at(-1) ?? "", /1\.0 MiB\/s  ETA 1:30$/);
    for (let step = 1; step <= 3; step++) {
      now = 10_000 + step * 1000;
      bar.update((10 + 4 * step) * MiB, 100 * MiB);
    }
    assert.match(writes.at(-1) ?? "", /22%.*4\.0 MiB\/s  ETA 0:20$/);
  });

  it("fits the line to the terminal width and clears it at the end", () => {
    const { writes, stream } = fakeTerminal(20);
    const bar = createProgressRenderer({ stream, now: () => 0 });
    bar.update(MiB, 100 * MiB);
    assert.equal((writes[0] ?? "").replace("\r\x1b[K", "").length, 19);
    bar.clear();
    assert.equal(writes.at(-1), "\r\x1b[K");
    bar.clear();
    assert.equal(writes.length, 2, "clearing twice writes nothing more");
  });
});
