// The rollout simulator's command line:
//   npm run sim -- --nodes N --size SIZE --rate MBIT [--zones Z] [--seeds S] [--json]
//   npm run sim -- --calibrate [--json]
//   npm run sim -- --sweep [--rate MBIT] [--zones Z] [--out DIR] [--json]
// A bad flag prints one line on stderr and exits 2.
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatBytes, parseBytes } from "@lacewing/common";
import { calibrationCases } from "./calibration.js";
import type { SimInput } from "./model/options.js";
import { runSimulation, type SimResult } from "./simulation.js";
import { renderPlots } from "./plot.js";

class UsageError extends Error {}

const USAGE = `usage: npm run sim -- --nodes N --size SIZE --rate MBIT [--zones Z] [--seeds S] [--json]
       npm run sim -- --calibrate [--json]
       npm run sim -- --sweep [--rate MBIT] [--zones Z] [--nodes-list 100,1000,5000] [--sizes 1GiB,10GiB] [--out DIR] [--json]
options: --piece-length SIZE --seed-rate MBIT --origin-rate MBIT --latency MS --queue MS --overhead X
         --fail FRACTION --random-seed N --outlier-interval MS --wake-interval MS --topology affinity|isolation --cross-zone-once`;

const FLAGS = {
  nodes: { type: "string" },
  size: { type: "string" },
  rate: { type: "string" },
  zones: { type: "string" },
  seeds: { type: "string" },
  json: { type: "boolean" },
  calibrate: { type: "boolean" },
  sweep: { type: "boolean" },
  "nodes-list": { type: "string" },
  sizes: { type: "string" },
  out: { type: "string" },
  "piece-length": { type: "string" },
  "seed-rate": { type: "string" },
  "origin-rate": { type: "string" },
  latency: { type: "string" },
  queue: { type: "string" },
  overhead: { type: "string" },
  fail: { type: "string" },
  "random-seed": { type: "string" },
  "outlier-interval": { type: "string" },
  "wake-interval": { type: "string" },
  topology: { type: "string" },
  "cross-zone-once": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof FLAGS; strict: true }>>["values"];

function numberFlag(values: Values, name: keyof typeof FLAGS, check: (n: number) => boolean, what: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(value) || !check(value))
    throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(raw)}`);
  return value;
}

function bytesFlag(values: Values, name: "size" | "piece-length"): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const bytes = parseBytes(raw);
  if (bytes === undefined || bytes < 1) throw new UsageError(`--${name} must be a size such as 128MiB or 1GiB, got ${JSON.stringify(raw)}`);
  return bytes;
}

const whole = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
const positive = (n: number): boolean => n > 0;
const nonNegative = (n: number): boolean => n >= 0;

/** The model's knobs shared by every mode. */
function tuningOf(values: Values): Partial<SimInput> {
  const input: Partial<SimInput> = {};
  const set = <K extends keyof SimInput>(key: K, value: SimInput[K] | undefined): void => {
    if (value !== undefined) input[key] = value;
  };
  set("zones", numberFlag(values, "zones", whole(1), "a whole number of at least 1"));
  set("seeds", numberFlag(values, "seeds", whole(0), "a whole number"));
  set("pieceLength", bytesFlag(values, "piece-length"));
  set("seedRateMbit", numberFlag(values, "seed-rate", positive, "a positive number of Mbit/s"));
  set("originRateMbit", numberFlag(values, "origin-rate", positive, "a positive number of Mbit/s"));
  set("latencyMs", numberFlag(values, "latency", nonNegative, "a number of ms"));
  set("queueMs", numberFlag(values, "queue", nonNegative, "a number of ms"));
  set(
    "overhead",
    numberFlag(values, "overhead", (n) => n >= 1, "a factor of at least 1"),
  );
  set(
    "failFraction",
    numberFlag(values, "fail", (n) => n >= 0 && n < 1, "a fraction in [0, 1)"),
  );
  set("randomSeed", numberFlag(values, "random-seed", whole(0), "a whole number"));
  set("outlierIntervalMs", numberFlag(values, "outlier-interval", nonNegative, "a number of ms"));
  set("wakeIntervalMs", numberFlag(values, "wake-interval", nonNegative, "a number of ms"));
  const topology = values.topology;
  if (topology !== undefined) {
    if (topology !== "affinity" && topology !== "isolation") throw new UsageError(`--topology must be affinity or isolation, got ${JSON.stringify(topology)}`);
    input.scheduler = { topology };
  }
  if (values["cross-zone-once"] === true) input.scheduler = { ...input.scheduler, crossZoneOnce: true };
  return input;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(2);
const ratio = (x: number): string => x.toFixed(2);

function summary(result: SimResult): string {
  const { options } = result;
  const lines = [
    `${options.nodes} nodes, ${formatBytes(options.sizeBytes)} in ${result.totalPieces} pieces of ${formatBytes(result.pieceLength)}, ${options.rateMbit} Mbit/s uplinks, ${options.zones} zone(s), ${options.seeds} seed(s)`,
    `F/U ${seconds(result.lowerBoundMs)} s`,
    `time to p50 ${seconds(result.p50Ms)} s (${ratio(result.p50Ratio)} × F/U), p99 ${seconds(result.p99Ms)} s (${ratio(result.p99Ratio)} ×), last ${seconds(result.lastMs)} s (${ratio(result.lastRatio)} ×)`,
    `completed ${result.completed}/${options.nodes}${result.failed > 0 ? `, ${result.failed} crashed` : ""}`,
    `origin ${formatBytes(result.originBytes)} (${result.originRatio.toFixed(3)} × size)`,
    `busiest uplink ${result.busiestUplink.id} (${result.busiestUplink.kind}) sent ${formatBytes(result.busiestUplink.sentBytes)} (${ratio(result.busiestUplink.ratio)} × size)`,
    `cross-zone ${formatBytes(result.crossZoneBytes)} (${ratio(result.crossZoneBytes / options.sizeBytes)} × size)`,
    `wasted (duplicate) ${formatBytes(result.traffic.wastedBytes)}, refusals busy ${result.traffic.refusals.busy} elsewhere ${result.traffic.refusals.elsewhere}, endgame requests ${result.traffic.endgameRequests}`,
    `scheduler: ${result.scheduler.decisions} decisions, ${result.scheduler.refreshes} refreshes, ${result.scheduler.reschedules} reschedules, longest wait ${seconds(result.scheduler.longestWaitMs)} s, real code ${seconds(result.scheduler.wallMs)} s wall`,
    `simulated ${result.events} events in ${seconds(result.wallMs)} s`,
  ];
  if (result.cpuUtilisation !== undefined) lines.push(`testbed CPU model: cores ${(100 * result.cpuUtilisation).toFixed(0)} % busy over the run`);
  return lines.join("\n");
}

/** The result without the per-host list (one line per host is too much for thousands). */
function compact(result: SimResult): Omit<SimResult, "hosts"> {
  const { hosts: _hosts, ...rest } = result;
  return rest;
}

async function calibrate(values: Values): Promise<void> {
  const rows = [];
  for (const withCpu of [false, true]) {
    for (const c of calibrationCases(withCpu)) {
      const result = await runSimulation(c.input);
      const predicted = result.lastMs / 1000;
      rows.push({
        case: c.name,
        model: withCpu ? "network + testbed CPU" : "network only",
        predictedSeconds: predicted,
        predictedRatio: result.lastRatio,
        measuredSeconds: c.measuredSeconds,
        measuredRatio: (c.measuredSeconds * 1000) / result.lowerBoundMs,
        otherRunsSeconds: c.otherRunsSeconds,
        error: predicted / c.measuredSeconds - 1,
        source: c.source,
      });
    }
  }
  if (values.json === true) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log("| case | model | sim s to last | × F/U | testbed s (table run) | × F/U | other runs s | sim vs table run |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const row of rows)
    console.log(
      `| ${row.case} | ${row.model} | ${row.predictedSeconds.toFixed(2)} | ${ratio(row.predictedRatio)} | ${row.measuredSeconds.toFixed(2)} | ${ratio(row.measuredRatio)} | ${row.otherRunsSeconds.map((s) => s.toFixed(2)).join(", ")} | ${(100 * row.error).toFixed(1)} % |`,
    );
}

async function sweep(values: Values): Promise<void> {
  const rateMbit = numberFlag(values, "rate", positive, "a positive number of Mbit/s") ?? 1000;
  const nodesList = (values["nodes-list"] ?? "100,1000,5000").split(",").map((raw) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError(`--nodes-list must be whole numbers separated by commas, got ${JSON.stringify(values["nodes-list"])}`);
    return n;
  });
  const sizes = (values.sizes ?? "1GiB,10GiB").split(",").map((raw) => {
    const bytes = parseBytes(raw);
    if (bytes === undefined || bytes < 1) throw new UsageError(`--sizes must be sizes separated by commas, got ${JSON.stringify(values.sizes)}`);
    return bytes;
  });
  const tuning = tuningOf(values);
  const results: SimResult[] = [];
  for (const sizeBytes of sizes)
    for (const nodes of nodesList) {
      const result = await runSimulation({ ...tuning, nodes, sizeBytes, rateMbit });
      results.push(result);
      // Each run as it ends: a sweep of thousands of nodes takes a while, and a cut-short one keeps what it measured.
      console.error(
        `${nodes} × ${formatBytes(sizeBytes)}: p50 ${ratio(result.p50Ratio)} p99 ${ratio(result.p99Ratio)} last ${ratio(result.lastRatio)} × F/U, origin ${result.originRatio.toFixed(3)} ×, ${seconds(result.wallMs)} s wall`,
      );
      if (values.out !== undefined) {
        mkdirSync(values.out, { recursive: true });
        writeFileSync(join(values.out, `run-${nodes}-${sizeBytes}.json`), JSON.stringify(compact(result), null, 1) + "\n");
      }
    }
  if (values.out !== undefined) {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, "sweep.json"), JSON.stringify(results.map(compact), null, 1) + "\n");
    await renderPlots(results, values.out);
  }
  if (values.json === true) {
    console.log(JSON.stringify(results.map(compact), null, 1));
    return;
  }
  console.log(`Uplinks ${rateMbit} Mbit/s, ${tuning.zones ?? 1} zone(s), ${tuning.seeds ?? 1} seed(s).`);
  console.log(
    "| nodes | size | pieces | F/U s | p50 × F/U | p99 × F/U | last × F/U | origin × size | busiest uplink × size | cross-zone × size | wasted × size | wall s |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results)
    console.log(
      `| ${r.options.nodes} | ${formatBytes(r.options.sizeBytes)} | ${r.totalPieces} × ${formatBytes(r.pieceLength)} | ${seconds(r.lowerBoundMs)} | ${ratio(r.p50Ratio)} | ${ratio(r.p99Ratio)} | ${ratio(r.lastRatio)} | ${r.originRatio.toFixed(3)} | ${ratio(r.busiestUplink.ratio)} (${r.busiestUplink.kind}) | ${ratio(r.crossZoneBytes / r.options.sizeBytes)} | ${ratio(r.traffic.wastedBytes / r.options.sizeBytes)} | ${seconds(r.wallMs)} |`,
    );
}

async function single(values: Values): Promise<void> {
  const nodes = numberFlag(values, "nodes", whole(1), "a whole number of at least 1");
  const sizeBytes = bytesFlag(values, "size");
  const rateMbit = numberFlag(values, "rate", positive, "a positive number of Mbit/s");
  if (nodes === undefined || sizeBytes === undefined || rateMbit === undefined) throw new UsageError("--nodes, --size and --rate are required");
  const result = await runSimulation({ ...tuningOf(values), nodes, sizeBytes, rateMbit });
  console.log(values.json === true ? JSON.stringify(compact(result), null, 1) : summary(result));
}

async function main(): Promise<void> {
  let values: Values;
  try {
    values = parseArgs({ options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) {
    console.log(USAGE);
    return;
  }
  if (values.calibrate === true) await calibrate(values);
  else if (values.sweep === true) await sweep(values);
  else await single(values);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError || err instanceof RangeError) {
    console.error(`sim: ${err.message}`);
    process.exitCode = 2;
    return;
  }
  console.error(`sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
