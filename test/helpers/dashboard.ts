// The Grafana dashboard's PromQL, taken apart so tests can check it against
// the metrics the processes really register and really export.
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@lacewing/common";
import { TaskStore, createDfdaemonMetrics } from "@lacewing/dfdaemon";
import { createManagerMetrics } from "@lacewing/manager";
import { ResourceRegistry, createSchedulerMetrics } from "@lacewing/scheduler";
import { ROOT } from "./processes.js";

export const DASHBOARD_PATH = join(ROOT, "charts/lacewing/dashboards/lacewing.json");

interface Panel {
  title?: string;
  panels?: Panel[];
  targets?: { expr?: string }[];
}

export interface DashboardQuery {
  panel: string;
  expr: string;
}

/** Every PromQL expression of the dashboard, with its panel's title (rows' nested panels included). */
export function dashboardQueries(text = readFileSync(DASHBOARD_PATH, "utf8")): DashboardQuery[] {
  const dashboard = JSON.parse(text) as { panels: Panel[] };
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title ?? "?", expr: t.expr ?? "" })));
}

const PROMQL_KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"]);
const NAME = /[A-Za-z_:][A-Za-z0-9_:]*/g;

/** Metric selectors in a PromQL expression: identifiers that are not functions, labels, keywords or durations. */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  const names: string[] = [];
  for (const match of bare.matchAll(NAME)) {
    const word = match[0];
    const at = match.index;
    if (at > 0 && /[0-9.]/.test(bare[at - 1] ?? "")) continue; // exponent of a number, e.g. 1e3
    if (/^\s*\(/.test(bare.slice(at + word.length))) continue; // function call
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.push(word);
  }
  return names;
}

export interface LabelMatcher {
  label: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

/** `name{label="value", …}` selectors with their matchers. */
export function selectorsIn(expr: string): { name: string; matchers: LabelMatcher[] }[] {
  const selectors: { name: string; matchers: LabelMatcher[] }[] = [];
  for (const match of expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const matchers: LabelMatcher[] = [];
    for (const m of (match[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g))
      matchers.push({ label: m[1] ?? "", op: m[2] as LabelMatcher["op"], value: m[3] ?? "" });
    selectors.push({ name: match[1] ?? "", matchers });
  }
  return selectors;
}

/** Labels named in `by (…)` / `without (…)` / `on (…)` / `ignoring (…)` clauses. */
export function groupingLabelsIn(expr: string): string[] {
  const labels: string[] = [];
  for (const match of expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g))
    for (const label of (match[1] ?? "").split(",")) if (label.trim() !== "") labels.push(label.trim());
  return labels;
}

/** Labels Prometheus adds to every scraped series (target labels of a ServiceMonitor scrape). */
export const TARGET_LABELS = new Set(["instance", "job", "namespace", "pod", "service", "container", "endpoint"]);

export interface RegisteredMetric {
  type: string;
  labels: ReadonlySet<string>;
}

/**
 * Every sample name the three processes register, from their real metric
 * factories, with its label names. Histograms give their `_bucket` (with
 * `le`), `_sum` and `_count` series. Default process metrics are left out:
 * the dashboard does not use them.
 */
export function registeredMetrics(): Map<string, RegisteredMetric> {
  const registries = [
    createSchedulerMetrics(new ResourceRegistry()).registry,
    createDfdaemonMetrics(new TaskStore(join(tmpdir(), "lacewing-unused"), silentLogger())).registry,
    createManagerMetrics(() => Promise.resolve(new Map())).registry,
  ];
  const out = new Map<string, RegisteredMetric>();
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      // prom-client keeps the declared label names on the metric object; its typings do not show them.
      const labels = new Set((metric as unknown as { labelNames?: string[] }).labelNames ?? []);
      const type = String(metric.type);
      if (type === "histogram") {
        out.set(`${metric.name}_bucket`, { type, labels: new Set([...labels, "le"]) });
        out.set(`${metric.name}_sum`, { type, labels });
        out.set(`${metric.name}_count`, { type, labels });
      } else {
        out.set(metric.name, { type, labels });
      }
    }
  }
  return out;
}

/** One series of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** From the family's `# TYPE` line: counter, gauge, histogram, summary or untyped. */
  type: string;
}

/** Parses the text format (no escapes beyond \" \\ \n in label values, which is all prom-client emits). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  let family = { name: "", type: "untyped" };
  for (const line of text.split("\n")) {
    const typeLine = /^# TYPE (\S+) (\S+)/.exec(line);
    if (typeLine !== null) family = { name: typeLine[1] ?? "", type: typeLine[2] ?? "untyped" };
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const m of (match[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[m[1] ?? ""] = (m[2] ?? "").replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
    const name = match[1] ?? "";
    const inFamily = name === family.name || (name.startsWith(`${family.name}_`) && /_(bucket|sum|count)$/.test(name));
    samples.push({ name, labels, value: Number(match[3]), type: inFamily ? family.type : "untyped" });
  }
  return samples;
}

/** True when a label value satisfies a matcher (regex matchers are anchored, as in PromQL). */
export function matches(matcher: LabelMatcher, value: string | undefined): boolean {
  const v = value ?? "";
  switch (matcher.op) {
    case "=":
      return v === matcher.value;
    case "!=":
      return v !== matcher.value;
    case "=~":
      return new RegExp(`^(?:${matcher.value})$`).test(v);
    case "!~":
      return !new RegExp(`^(?:${matcher.value})$`).test(v);
  }
}
