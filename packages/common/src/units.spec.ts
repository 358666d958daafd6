import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatBytes, parseBytes, parseDuration } from "./units.js";

describe("parseDuration", () => {
  it("parses single units to milliseconds", () => {
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("30s"), 30_000);
    assert.equal(parseDuration("5m"), 300_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("7d"), 7 * 86_400_000);
    assert.equal(parseDuration("1.5s"), 1_500);
  });

  it("adds compound durations", () => {
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("1m30s500ms"), 90_500);
  });

  it("reads bare numbers as milliseconds", () => {
    assert.equal(parseDuration("1500"), 1500);
    assert.equal(parseDuration(1500), 1500);
    assert.equal(parseDuration(" 30s "), 30_000);
  });

  it("returns undefined for bad durations", () => {
    for (const bad of ["", "  ", "abc", "5x", "-5s", "1h 30m", "h", "10mb", "1h30", "s30"]) {
      assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
    }
    assert.equal(parseDuration(-1), undefined);
    assert.equal(parseDuration(Number.NaN), undefined);
    assert.equal(parseDuration(Number.POSITIVE_INFINITY), undefined);
  });
});

describe("parseBytes", () => {
  it("parses binary and decimal units, case-insensitively", () => {
    assert.equal(parseBytes("64MiB"), 64 * 2 ** 20);
    assert.equal(parseBytes("64mib"), 64 * 2 ** 20);
    assert.equal(parseBytes("10GB"), 10e9);
    assert.equal(parseBytes("1.5Gi"), 1.5 * 2 ** 30);
    assert.equal(parseBytes("512"), 512);
    assert.equal(parseBytes("512B"), 512);
    assert.equal(parseBytes("2k"), 2000);
    assert.equal(parseBytes("1TiB"), 2 ** 40);
    assert.equal(parseBytes("64 MiB"), 64 * 2 ** 20);
  });

  it("accepts non-negative numbers, flooring fractions", () => {
    assert.equal(parseBytes(4096), 4096);
    assert.equal(parseBytes(10.9), 10);
  });

  it("returns undefined for bad sizes", () => {
    for (const bad of ["", "abc", "MiB", "10XB", "-1", "1.2.3MB", "10 M i B"]) {
      assert.equal(parseBytes(bad), undefined, JSON.stringify(bad));
    }
    assert.equal(parseBytes(-1), undefined);
    assert.equal(parseBytes(Number.NaN), undefined);
  });
});

describe("formatBytes", () => {
  it("uses bytes below 1 KiB and one decimal with binary units above", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1023), "1023 B");
    assert.equal(formatBytes(1024), "1.0 KiB");
    assert.equal(formatBytes(64 * 2 ** 20), "64.0 MiB");
    assert.equal(formatBytes(1.5 * 2 ** 30), "1.5 GiB");
    assert.equal(formatBytes(3 * 2 ** 40), "3.0 TiB");
  });

  it("stays in TiB beyond the largest unit", () => {
    assert.equal(formatBytes(2048 * 2 ** 40), "2048.0 TiB");
  });
});
