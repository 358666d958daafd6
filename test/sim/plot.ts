// Curves of a sweep as SVG, and as PNG through headless chromium when it is
// installed (Debian's, the one the console tests use). Run on a saved sweep:
//   node test/dist/sim/plot.js SWEEP.json OUT_DIR
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { formatBytes } from "@lacewing/common";
import type { SimResult } from "./simulation.js";

const CHROMIUM = "/usr/bin/chromium";
const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { left: 60, right: 170, top: 30, bottom: 50 };
const COLOURS = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8c564b", "#444444"];

type Run = Pick<SimResult, "options" | "lowerBoundMs" | "timeline" | "p99Ratio" | "lastRatio">;

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

/** Share of nodes done against time in F/U, one line per run, with the 1.3 × and 1.5 × targets marked. */
export function completionSvg(runs: readonly Run[], title: string): string {
  const maxX = Math.max(2, Math.ceil(Math.max(...runs.map((run) => run.lastRatio)) + 0.5));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (ratio: number): number => MARGIN.left + (ratio / maxX) * plotW;
  const y = (share: number): number => MARGIN.top + (1 - share) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="18" font-size="14">${escape(title)}</text>`,
  ];
  const step = maxX <= 4 ? 0.5 : maxX <= 10 ? 1 : 2;
  for (let tick = 0; tick <= maxX + 1e-9; tick += step) {
    parts.push(`<line x1="${x(tick)}" y1="${y(0)}" x2="${x(tick)}" y2="${y(1)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${x(tick)}" y="${y(0) + 16}" text-anchor="middle">${tick}</text>`);
  }
  for (let share = 0; share <= 1.0001; share += 0.25) {
    parts.push(`<line x1="${x(0)}" y1="${y(share)}" x2="${x(maxX)}" y2="${y(share)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${x(0) - 6}" y="${y(share) + 4}" text-anchor="end">${Math.round(share * 100)} %</text>`);
  }
  for (const [target, label] of [
    [1.3, "p99 target 1.3"],
    [1.5, "last target 1.5"],
  ] as const) {
    parts.push(`<line x1="${x(target)}" y1="${y(0)}" x2="${x(target)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${x(target) + 3}" y="${y(target === 1.3 ? 0.06 : 0.12)}" fill="#777">${label}</text>`);
  }
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">time / (F/U)</text>`);
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">nodes holding the whole file</text>`);
  runs.forEach((run, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const nodes = run.options.nodes;
    const points = run.timeline.map((point) => `${x(point.ms / run.lowerBoundMs).toFixed(1)},${y(point.done / nodes).toFixed(1)}`);
    points.push(`${x(run.lastRatio).toFixed(1)},${y(1).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.join(" ")}"/>`);
    const held = run.timeline.map((point) => `${x(point.ms / run.lowerBoundMs).toFixed(1)},${y(point.heldShare).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1" stroke-dasharray="2 3" points="${held.join(" ")}"/>`);
    const ly = MARGIN.top + 14 + i * 18;
    parts.push(`<line x1="${WIDTH - MARGIN.right + 12}" y1="${ly - 4}" x2="${WIDTH - MARGIN.right + 32}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${WIDTH - MARGIN.right + 36}" y="${ly}">${nodes} × ${escape(formatBytes(run.options.sizeBytes))}</text>`);
  });
  const ly = MARGIN.top + 14 + runs.length * 18 + 8;
  parts.push(`<text x="${WIDTH - MARGIN.right + 12}" y="${ly}" fill="#555">solid: nodes done</text>`);
  parts.push(`<text x="${WIDTH - MARGIN.right + 12}" y="${ly + 16}" fill="#555">dotted: bytes held</text>`);
  parts.push("</svg>");
  return parts.join("\n");
}

/** Writes `name`.svg, and `name`.png when chromium is there; returns the files written. */
export async function writePlot(svg: string, dir: string, name: string): Promise<string[]> {
  const svgPath = join(dir, `${name}.svg`);
  writeFileSync(svgPath, svg + "\n");
  if (!existsSync(CHROMIUM)) return [svgPath];
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: WIDTH, height: HEIGHT } });
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    const pngPath = join(dir, `${name}.png`);
    await page.screenshot({ path: pngPath, clip: { x: 0, y: 0, width: WIDTH, height: HEIGHT } });
    return [svgPath, pngPath];
  } finally {
    await browser.close();
  }
}

/** One plot per task size: every node count on it. */
export async function renderPlots(results: readonly Run[], dir: string): Promise<string[]> {
  const written: string[] = [];
  const sizes = [...new Set(results.map((result) => result.options.sizeBytes))];
  for (const size of sizes) {
    // A run cut off before every node finished has no end to draw; the tables give its figures.
    const runs = results.filter((result) => result.options.sizeBytes === size && Number.isFinite(result.lastRatio));
    if (runs.length === 0) continue;
    const { rateMbit, zones } = runs[0]!.options;
    const title = `Rollout of ${formatBytes(size)}, ${rateMbit} Mbit/s uplinks, ${zones} zone(s) (simulated)`;
    written.push(...(await writePlot(completionSvg(runs, title), dir, `sim-rollout-${formatBytes(size).replace(".0 ", "").replace(" ", "")}`)));
  }
  return written;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [input, dir] = process.argv.slice(2);
  if (input === undefined || dir === undefined) {
    console.error("usage: node test/dist/sim/plot.js SWEEP.json OUT_DIR");
    process.exit(2);
  }
  const results = JSON.parse(readFileSync(input, "utf8")) as Run[];
  for (const file of await renderPlots(results, dir)) console.log(file);
}
