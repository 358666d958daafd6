// Static checks of the Helm chart, standing in for `helm lint` / `helm template`
// (helm is not installable in CI): the values schema, the YAML shape of every
// template, the Grafana dashboard's PromQL against the metrics the processes register, and
// the chart's ports and paths against the processes' DEFAULTS.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import type { ErrorObject } from "ajv";
import { parse, parseAllDocuments } from "yaml";
import { DEFAULTS, parseSchedulerEntry } from "@lacewing/common";
import { dfdaemonSchema, loadDfdaemonConfig } from "@lacewing/dfdaemon";
import { loadManagerConfig, managerConfigSchema } from "@lacewing/manager";
import { loadSchedulerConfig, schedulerConfigSchema } from "@lacewing/scheduler";
import { BIN, runCommand } from "../helpers/processes.js";
import { TARGET_LABELS, dashboardQueries, groupingLabelsIn, metricNamesIn, registeredMetrics, selectorsIn } from "../helpers/dashboard.js";

// Compiled to test/dist/chart/chart.spec.js; the chart lives at the repository root.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const chartDir = join(repoRoot, "charts/lacewing");
const templatesDir = join(chartDir, "templates");
const examplesDir = join(chartDir, "examples");

type Values = Record<string, unknown>;

function readYaml(path: string): Values {
  const value: unknown = parse(readFileSync(path, "utf8"));
  assert.ok(isMap(value), `${path} is not a YAML mapping`);
  return value;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Helm's merge of a user values file over the chart defaults: maps merge, everything else replaces, null deletes. */
function helmMerge(base: Values, override: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    if (value === null) delete out[key];
    else if (isMap(current) && isMap(value)) out[key] = helmMerge(current, value);
    else out[key] = value;
  }
  return out;
}

function getPath(values: unknown, path: string): unknown {
  let node = values;
  for (const part of path.split(".")) {
    if (!isMap(node) || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

const defaults = readYaml(join(chartDir, "values.yaml"));
const schema = JSON.parse(readFileSync(join(chartDir, "values.schema.json"), "utf8")) as Record<string, unknown>;
const examples = readdirSync(examplesDir)
  .filter((name) => name.endsWith(".yaml"))
  .sort();

function compileSchema() {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  return ajv.compile(schema);
}

function errorsOf(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`).join("; ");
}

describe("values.schema.json", () => {
  const validate = compileSchema();

  it("is a draft-07 schema that forbids unknown top-level keys", () => {
    assert.equal(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert.equal(schema["additionalProperties"], false);
  });

  it("accepts the chart's values.yaml", () => {
    assert.ok(validate(defaults), errorsOf(validate.errors));
  });

  for (const name of examples) {
    it(`accepts examples/${name} on its own and merged over the defaults`, () => {
      const example = readYaml(join(examplesDir, name));
      assert.ok(validate(example), `raw: ${errorsOf(validate.errors)}`);
      assert.ok(validate(helmMerge(defaults, example)), `merged: ${errorsOf(validate.errors)}`);
    });
  }

  it("ships the two documented examples", () => {
    assert.deepEqual(examples, ["external-db.yaml", "small-cluster.yaml"]);
  });

  it("rejects a value of the wrong type and names it", () => {
    const bad = helmMerge(defaults, { scheduler: { replicas: "three" } });
    assert.equal(validate(bad), false);
    assert.ok(
      validate.errors?.some((e) => e.instancePath === "/scheduler/replicas" && e.keyword === "type"),
      errorsOf(validate.errors),
    );
  });

  it("rejects an unknown top-level key", () => {
    const bad = helmMerge(defaults, { schedulers: { replicas: 3 } });
    assert.equal(validate(bad), false);
    assert.ok(
      validate.errors?.some((e) => e.keyword === "additionalProperties" && e.params["additionalProperty"] === "schedulers"),
      errorsOf(validate.errors),
    );
  });

  it("rejects a misspelt nested key and an out-of-range port", () => {
    assert.equal(validate(helmMerge(defaults, { dfdaemon: { hostnetwork: true } })), false);
    assert.equal(validate(helmMerge(defaults, { dfdaemon: { proxyPort: 70000 } })), false);
  });

  it("gives every value in values.yaml a type", () => {
    const definitions = schema["definitions"] as Record<string, Record<string, unknown>>;
    const deref = (node: Record<string, unknown>): Record<string, unknown> => {
      const ref = node["$ref"];
      if (typeof ref !== "string") return node;
      const target = definitions[ref.replace("#/definitions/", "")];
      assert.ok(target, `dangling ${ref}`);
      return deref(target);
    };
    const walk = (value: unknown, node: Record<string, unknown>, path: string): void => {
      const resolved = deref(node);
      assert.ok("type" in resolved || "oneOf" in resolved, `${path} has no type in the schema`);
      if (!isMap(value)) return;
      const properties = resolved["properties"] as Record<string, Record<string, unknown>> | undefined;
      for (const [key, child] of Object.entries(value)) {
        const childNode = properties?.[key] ?? (resolved["additionalProperties"] as Record<string, unknown> | undefined);
        // Free-form maps (resources, affinity, config) are typed as objects at their own level.
        if (childNode === undefined && properties === undefined) continue;
        assert.ok(isMap(childNode), `${path}.${key} is not described by the schema`);
        walk(child, childNode, `${path}.${key}`);
      }
    };
    walk(defaults, schema, "values");
  });
});

// ---------------------------------------------------------------------------
// Templates: Go-template actions are removed or replaced so the static YAML
// around them can be parsed. Pure control lines are dropped; of an if/else only
// the first branch is kept (both branches together would duplicate keys);
// `include` of a helper on its own line is expanded, indented as nindent says, so
// the helpers' YAML is checked in place; other inline actions become a scalar, or
// nothing when they emit an indented block.

const ACTION = /\{\{(?:(?!\}\})[\s\S])*\}\}/g;
const OPENERS = new Set(["if", "with", "range", "define", "block"]);
const INCLUDE_LINE = /^\{\{-?\s*include\s+"([^"]+)"(?:(?!\}\})[\s\S])*?(?:\|\s*nindent\s+(\d+))?\s*-?\}\}$/;

interface Stripped {
  yaml: string;
  /** Unclosed or unmatched blocks, as messages. */
  problems: string[];
}

function actionWord(action: string): string {
  const body = action.replace(/^\{\{-?\s*/, "").replace(/\s*-?\}\}$/, "");
  if (body.startsWith("/*")) return "comment";
  return body.split(/\s+/)[0] ?? "";
}

/** Bodies of the `{{ define "name" }}` blocks of a helpers file. */
function definesOf(helpers: string): Map<string, string> {
  const defines = new Map<string, string>();
  let open: { name: string; start: number } | undefined;
  let depth = 0;
  for (const match of helpers.matchAll(ACTION)) {
    const word = actionWord(match[0]);
    if (word === "define" && depth === 0) {
      open = { name: /"([^"]+)"/.exec(match[0])?.[1] ?? "", start: match.index + match[0].length };
      depth = 1;
    } else if (OPENERS.has(word)) depth += 1;
    else if (word === "end" && depth > 0 && --depth === 0 && open) {
      defines.set(open.name, helpers.slice(open.start, match.index));
      open = undefined;
    }
  }
  return defines;
}

function toStaticYaml(template: string, defines = new Map<string, string>(), depth = 0): Stripped {
  const problems: string[] = [];
  // Multi-line actions are comments or variable set-up, never YAML content.
  const text = template.replace(ACTION, (action) => (action.includes("\n") ? "" : action));
  const stack: { skipping: boolean }[] = [];
  const out: string[] = [];
  text.split("\n").forEach((line, index) => {
    const actions = line.match(ACTION) ?? [];
    const isControl = actions.length > 0 && line.replace(ACTION, "").trim() === "";
    const skipping = stack.some((frame) => frame.skipping);
    if (isControl) {
      const include = actions.length === 1 ? INCLUDE_LINE.exec(line.trim()) : null;
      const body = include ? defines.get(include[1] ?? "") : undefined;
      if (include && body !== undefined && !skipping && depth < 8) {
        const inner = toStaticYaml(body, defines, depth + 1);
        problems.push(...inner.problems.map((p) => `in ${include[1] ?? ""}: ${p}`));
        const indent = " ".repeat(include[2] !== undefined ? Number(include[2]) : line.length - line.trimStart().length);
        for (const innerLine of inner.yaml.split("\n")) if (innerLine.trim() !== "") out.push(indent + innerLine);
        return;
      }
      for (const action of actions) {
        const word = actionWord(action);
        if (OPENERS.has(word)) stack.push({ skipping: false });
        else if (word === "else") {
          const top = stack.at(-1);
          if (top === undefined) problems.push(`line ${index + 1}: else outside a block`);
          else top.skipping = true;
        } else if (word === "end") {
          if (stack.pop() === undefined) problems.push(`line ${index + 1}: end without a block`);
        }
      }
      return;
    }
    if (skipping) return;
    out.push(line.replace(ACTION, (action) => (/\bn?indent\b/.test(action) ? "" : "__TPL__")));
  });
  if (stack.length > 0) problems.push(`${stack.length} block(s) not closed with {{ end }}`);
  return { yaml: out.join("\n"), problems };
}

interface Manifest {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

const helperSources = definesOf(readFileSync(join(templatesDir, "_helpers.tpl"), "utf8"));
const helpers = helperSources;

function parseTemplate(template: string): { docs: Manifest[]; errors: string[] } {
  const { yaml, problems } = toStaticYaml(template, helpers);
  const errors = [...problems];
  const docs: Manifest[] = [];
  for (const doc of parseAllDocuments(yaml)) {
    errors.push(...doc.errors.map((e) => e.message));
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) docs.push(value as Manifest);
  }
  return { docs, errors };
}

const templateFiles = readdirSync(templatesDir)
  .filter((name) => name.endsWith(".yaml"))
  .sort();
const rendered = new Map(templateFiles.map((name) => [name, parseTemplate(readFileSync(join(templatesDir, name), "utf8"))]));
const allDocs = [...rendered.values()].flatMap((r) => r.docs);

/** The first object of a kind in one template file (names are templated, so files identify components). */
function findDoc(kind: string, file: string): Manifest {
  const doc = rendered.get(file)?.docs.find((d) => d.kind === kind);
  assert.ok(doc, `no ${kind} in templates/${file}`);
  return doc;
}

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; valueFrom?: unknown }[];
  ports?: { name: string; hostPort?: unknown }[];
  volumeMounts?: { name: string; mountPath: string }[];
}

function podSpec(doc: Manifest): { containers: Container[]; initContainers?: Container[]; volumes?: { name: string; hostPath?: unknown }[] } {
  const template = doc.spec?.["template"] as { spec: ReturnType<typeof podSpec> } | undefined;
  assert.ok(template, `${String(doc.kind)} has no pod template`);
  return template.spec;
}

describe("template static YAML", () => {
  it("the stripper keeps YAML structure and catches broken templates", () => {
    const good = toStaticYaml(
      [
        "spec:",
        "  {{- if .Values.a }}",
        "  replicas: {{ .Values.a }}",
        "  {{- else }}",
        "  replicas: 1",
        "  {{- end }}",
        "  labels:",
        '    {{- include "x" . | nindent 4 }}',
        '  image: "{{ .Values.image }}:{{ .Values.tag }}"',
      ].join("\n"),
    );
    assert.deepEqual(good.problems, []);
    assert.deepEqual(parse(good.yaml), { spec: { replicas: "__TPL__", labels: null, image: "__TPL__:__TPL__" } });

    const expanded = toStaticYaml('metadata:\n  labels:\n    {{- include "l" . | nindent 4 }}\n', new Map([["l", "a: {{ .x }}\nb: c\n"]]));
    assert.deepEqual(parse(expanded.yaml), { metadata: { labels: { a: "__TPL__", b: "c" } } });
    assert.ok(helpers.has("lacewing.labels") && helpers.has("lacewing.dfdaemon.args"), "helpers were not found");

    const misindented = parseTemplate("spec:\n  a: {{ .x }}\n b: 1\n");
    assert.ok(misindented.errors.length > 0, "a mis-indented key must fail to parse");
    const unclosed = parseTemplate("{{- if .x }}\na: 1\n");
    assert.ok(unclosed.errors.some((e) => e.includes("not closed")));
  });

  for (const name of templateFiles) {
    it(`templates/${name} parses to Kubernetes objects`, () => {
      const result = rendered.get(name);
      assert.ok(result);
      assert.deepEqual(result.errors, []);
      assert.ok(result.docs.length > 0, "no documents");
      for (const doc of result.docs) {
        assert.equal(typeof doc.apiVersion, "string", `a document in ${name} has no apiVersion`);
        assert.equal(typeof doc.kind, "string", `a document in ${name} has no kind`);
        assert.ok(doc.metadata?.name, `a ${String(doc.kind)} in ${name} has no metadata.name`);
      }
    });
  }

  it("_helpers.tpl and NOTES.txt have balanced blocks", () => {
    for (const name of ["_helpers.tpl", "NOTES.txt"]) {
      assert.deepEqual(toStaticYaml(readFileSync(join(templatesDir, name), "utf8")).problems, [], name);
    }
  });

  it("defines every workload, Service, PDB, ServiceMonitor and the dashboard ConfigMap", () => {
    const count = (kind: string) => allDocs.filter((d) => d.kind === kind).length;
    assert.equal(count("Deployment"), 1);
    assert.equal(count("StatefulSet"), 2);
    assert.equal(count("DaemonSet"), 1);
    assert.equal(count("Service"), 4);
    assert.ok(count("PodDisruptionBudget") >= 1);
    assert.ok(count("ServiceMonitor") >= 1);
    assert.ok(count("ConfigMap") >= 1);
  });

  it("scheduler and seed peers have headless Services; the StatefulSets use them", () => {
    for (const file of ["scheduler.yaml", "seed-peer.yaml"]) {
      const service = findDoc("Service", file);
      assert.equal(service.spec?.["clusterIP"], "None");
      assert.ok(findDoc("StatefulSet", file).spec?.["serviceName"]);
    }
    assert.ok(findDoc("StatefulSet", "seed-peer.yaml").spec?.["volumeClaimTemplates"], "seed peers keep their data on a PVC");
  });

  it("seed peers run dfdaemon --seed and the daemons get the scheduler list", () => {
    const seed = podSpec(findDoc("StatefulSet", "seed-peer.yaml")).containers[0];
    const daemon = podSpec(findDoc("DaemonSet", "dfdaemon.yaml")).containers[0];
    assert.deepEqual(seed?.command, ["dfdaemon"]);
    assert.ok(seed?.args?.includes("--seed"));
    // Both branches of `if .seed` are in the static view; the flag is chosen by the include's argument.
    assert.match(readFileSync(join(templatesDir, "seed-peer.yaml"), "utf8"), /"lacewing\.dfdaemon\.args" \(dict [^)]*"seed" true\)/);
    assert.match(readFileSync(join(templatesDir, "dfdaemon.yaml"), "utf8"), /"lacewing\.dfdaemon\.args" \(dict [^)]*"seed" false\)/);
    for (const container of [seed, daemon]) {
      const args = container?.args;
      for (const flag of [
        "--scheduler",
        "--data-dir",
        "--advertise-ip",
        "--listen-ip",
        "--peer-port",
        "--upload-port",
        "--proxy-port",
        "--metrics-port",
        "--socket",
        "--log-level",
      ]) {
        assert.ok(args?.includes(flag), `missing ${flag}`);
      }
      assert.equal(args?.[args.indexOf("--advertise-ip") + 1], "$(POD_IP)");
      const podIp = container?.env?.find((e) => e.name === "POD_IP");
      assert.deepEqual(podIp?.valueFrom, { fieldRef: { fieldPath: "status.podIP" } }, "POD_IP comes from the downward API");
    }
  });

  it("the daemons' flags take the ports and paths the Services, probes and volumes use", () => {
    const source = helperSources.get("lacewing.dfdaemon.args") ?? "";
    const expected: Record<string, string> = {
      "--data-dir": "dataDir",
      "--listen-ip": "listenIp",
      "--peer-port": "peerPort",
      "--upload-port": "uploadPort",
      "--proxy-port": "proxyPort",
      "--metrics-port": "metricsPort",
      "--socket": "socket",
      "--log-level": "logLevel",
    };
    for (const [flag, key] of Object.entries(expected)) {
      assert.match(source, new RegExp(`- ${flag}\\n- \\{\\{ \\.values\\.${key} \\| quote \\}\\}`), `${flag} takes .values.${key}`);
    }
    const scheduler = readFileSync(join(templatesDir, "scheduler.yaml"), "utf8");
    assert.match(scheduler, /- --metrics-port\n\s+- \{\{ \.Values\.scheduler\.metricsPort \| quote \}\}/);
    assert.match(scheduler, /printf "0\.0\.0\.0:%d" \(int \.Values\.scheduler\.port\)/);
    const daemonSet = readFileSync(join(templatesDir, "dfdaemon.yaml"), "utf8");
    assert.match(daemonSet, /- --proxy-port\n\s+- \{\{ \$v\.proxyPort \| quote \}\}/, "hosts.toml points at the proxy port the daemon listens on");
  });

  it("every replica of the scheduler StatefulSet reaches the daemons and the manager through the headless Service name", () => {
    const helper = helperSources.get("lacewing.schedulerAddresses") ?? "";
    // One name, resolved by the daemons and the manager to one A record per replica.
    assert.match(helper, /\$name := include "lacewing\.scheduler\.fullname"/);
    assert.match(helper, /printf "%s\.%s\.svc\.%s:%d" \$name \.Release\.Namespace \.Values\.clusterDomain \(int \.Values\.scheduler\.port\)/);
    assert.doesNotMatch(helper, /range/, "no per-pod list that would have to be re-rendered when replicas change");
    assert.deepEqual(parseSchedulerEntry("lacewing-scheduler.lacewing.svc.cluster.local:8002"), {
      host: "lacewing-scheduler.lacewing.svc.cluster.local",
      port: 8002,
    });
    const source = readFileSync(join(templatesDir, "scheduler.yaml"), "utf8");
    assert.match(source, /name: \{\{ \$name \}\}/);
    assert.match(source, /\$name := include "lacewing\.scheduler\.fullname"/);
    const service = findDoc("Service", "scheduler.yaml");
    assert.equal(service.spec?.["clusterIP"], "None", "headless: the name has one A record per pod");
    assert.equal(service.spec?.["publishNotReadyAddresses"], true, "a starting replica keeps its record, so task ownership does not flap");
    assert.equal(findDoc("StatefulSet", "scheduler.yaml").spec?.["replicas"], "__TPL__");
    assert.ok((getPath(defaults, "scheduler.replicas") as number) > 1, "several replicas by default");
    for (const file of ["dfdaemon.yaml", "seed-peer.yaml"])
      assert.match(helperSources.get("lacewing.dfdaemon.args") ?? "", /include "lacewing\.schedulerAddresses"/, file);
    assert.match(readFileSync(join(templatesDir, "manager.yaml"), "utf8"), /- --scheduler\n\s+- \{\{ include "lacewing\.schedulerAddresses" \. \| quote \}\}/);
  });

  it("the DaemonSet writes containerd hosts.toml in an init container and keeps cache and socket on hostPaths", () => {
    const spec = podSpec(findDoc("DaemonSet", "dfdaemon.yaml"));
    const init = spec.initContainers?.find((c) => c.name === "containerd-config");
    assert.ok(init);
    assert.deepEqual(init.args?.slice(0, 2), ["containerd-config", "--registry"]);
    assert.ok(init.args?.includes("--config-path"));
    const hostPaths = new Set(spec.volumes?.filter((v) => v.hostPath !== undefined).map((v) => v.name));
    for (const name of ["data", "socket", "containerd-certs"]) assert.ok(hostPaths.has(name), `${name} is not a hostPath`);
    assert.ok(init.volumeMounts?.some((m) => m.name === "containerd-certs"));
  });

  it("every .Values reference in the templates exists in values.yaml", () => {
    const sources = readdirSync(templatesDir).map((name) => readFileSync(join(templatesDir, name), "utf8"));
    const missing = new Set<string>();
    for (const source of sources) {
      for (const match of source.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const path = (match[1] ?? "").slice(1);
        if (getPath(defaults, path) === undefined) missing.add(path);
      }
    }
    assert.deepEqual([...missing], []);
  });
});

// ---------------------------------------------------------------------------
// Every --flag a template passes must be an option of the command it runs:
// the binaries' own --help is the source of truth.

/** Long options listed in a commander --help text. */
function optionsInHelp(help: string): Set<string> {
  const options = new Set<string>();
  for (const match of help.matchAll(/^\s+(?:-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*)/gm)) options.add(match[1] ?? "");
  return options;
}

const SUBCOMMANDS: Record<string, Set<string>> = { dfdaemon: new Set(["run", "status", "containerd-config"]), "lacewing-manager": new Set(["run", "certs"]) };

/** The binary and subcommand a container runs, as `--help` arguments. */
function helpArgs(container: Container): { bin: string; args: string[]; label: string } {
  const command = container.command?.[0] ?? "";
  const bin = { dfdaemon: BIN.dfdaemon, "lacewing-scheduler": BIN.scheduler, "lacewing-manager": BIN.manager }[command];
  assert.ok(bin, `container ${container.name} runs ${command}, which is not a Lacewing binary`);
  const first = container.args?.[0];
  const sub = SUBCOMMANDS[command];
  if (sub === undefined) return { bin, args: ["--help"], label: command };
  const subcommand = first !== undefined && sub.has(first) ? first : "run";
  return { bin, args: [subcommand, "--help"], label: `${command} ${subcommand}` };
}

describe("template arguments", () => {
  const containers = allDocs.flatMap((doc) => {
    const template = doc.spec?.["template"] as { spec?: { containers?: Container[]; initContainers?: Container[] } } | undefined;
    return [...(template?.spec?.initContainers ?? []), ...(template?.spec?.containers ?? [])];
  });

  it("the option parser reads commander help", () => {
    assert.deepEqual(
      [...optionsInHelp("Options:\n  -O, --output <file>  out\n  --no-progress  quiet\n  -h, --help  help\nCommands:\n  run\n")],
      ["--output", "--no-progress", "--help"],
    );
  });

  it("every --flag passed to a Lacewing binary is an option of that command", async () => {
    const helps = new Map<string, Set<string>>();
    let checked = 0;
    for (const container of containers) {
      const { bin, args, label } = helpArgs(container);
      let options = helps.get(label);
      if (options === undefined) {
        const result = await runCommand(bin, args);
        assert.equal(result.code, 0, `${label} --help: ${result.stderr}`);
        options = optionsInHelp(result.stdout);
        assert.ok(options.size > 2, `${label} --help lists options`);
        helps.set(label, options);
      }
      for (const flag of container.args?.filter((arg) => arg.startsWith("--")) ?? []) {
        assert.ok(options.has(flag), `${container.name} passes ${flag}, which \`${label}\` does not have (it has ${[...options].join(" ")})`);
        checked++;
      }
    }
    assert.deepEqual([...helps.keys()].sort(), ["dfdaemon containerd-config", "dfdaemon run", "lacewing-manager run", "lacewing-scheduler"]);
    assert.ok(checked >= 30, `only ${checked} flags checked`);
  });

  it("every LACEWING_/DFDAEMON_ variable a template sets is one the process's config schema reads", () => {
    const envOf: Record<string, Set<string>> = {
      dfdaemon: new Set(Object.values(dfdaemonSchema).flatMap((f) => (f.env === undefined ? [] : [f.env]))),
      "lacewing-scheduler": new Set(Object.values(schedulerConfigSchema).flatMap((f) => (f.env === undefined ? [] : [f.env]))),
      "lacewing-manager": new Set(Object.values(managerConfigSchema).flatMap((f) => (f.env === undefined ? [] : [f.env]))),
    };
    let checked = 0;
    for (const container of containers) {
      const known = envOf[container.command?.[0] ?? ""];
      for (const { name } of container.env ?? []) {
        if (!/^(LACEWING|DFDAEMON)_/.test(name)) continue;
        assert.ok(known?.has(name), `${container.name} sets ${name}, which its process does not read`);
        checked++;
      }
    }
    assert.ok(checked >= 1, "the manager's token variable is checked");
    assert.equal(managerConfigSchema.token.env, "LACEWING_MANAGER_TOKEN");
  });

  it("every log level the chart allows is one each process accepts", () => {
    const definitions = schema["definitions"] as Record<string, { enum?: string[] }>;
    const levels = definitions["logLevel"]?.enum ?? [];
    assert.ok(levels.length > 0);
    for (const logLevel of levels) {
      assert.doesNotThrow(() => loadDfdaemonConfig({ env: {}, flags: { logLevel } }), `dfdaemon ${logLevel}`);
      assert.doesNotThrow(() => loadSchedulerConfig({ env: {}, flags: { logLevel } }), `scheduler ${logLevel}`);
      assert.doesNotThrow(() => loadManagerConfig({ env: {}, flags: { logLevel } }), `manager ${logLevel}`);
    }
    for (const component of ["manager", "scheduler", "seedPeer", "dfdaemon"]) assert.ok(levels.includes(String(getPath(defaults, `${component}.logLevel`))));
  });
});

// ---------------------------------------------------------------------------
// Dashboard: every metric and label it queries must be one the processes
// register, read from their real metric factories (not from a copied list).

const registered = registeredMetrics();

describe("Grafana dashboard", () => {
  const dashboardText = readFileSync(join(chartDir, "dashboards/lacewing.json"), "utf8");

  it("parses as JSON", () => {
    assert.doesNotThrow(() => JSON.parse(dashboardText) as unknown);
  });

  const dashboard = JSON.parse(dashboardText) as { templating?: { list: { query?: unknown }[] } };
  const exprs = dashboardQueries(dashboardText);

  it("the PromQL helpers see selectors, matchers and grouping labels, and ignore functions and ranges", () => {
    const expr = 'histogram_quantile(0.95, sum by (le) (rate(foo_bucket{a="b", c=~"x|y"}[$__rate_interval]))) / on(x) bar_total offset 5m';
    assert.deepEqual(metricNamesIn(expr), ["foo_bucket", "bar_total"]);
    assert.deepEqual(selectorsIn(expr), [
      {
        name: "foo_bucket",
        matchers: [
          { label: "a", op: "=", value: "b" },
          { label: "c", op: "=~", value: "x|y" },
        ],
      },
    ]);
    assert.deepEqual(groupingLabelsIn(expr), ["le", "x"]);
  });

  it("reads the registered metrics from the processes' factories", () => {
    assert.equal(registered.get("lacewing_dfdaemon_download_bytes_total")?.type, "counter");
    assert.deepEqual([...(registered.get("lacewing_dfdaemon_download_bytes_total")?.labels ?? [])], ["source"]);
    assert.ok(registered.get("lacewing_scheduler_schedule_duration_seconds_bucket")?.labels.has("le"));
    assert.ok(registered.has("lacewing_manager_jobs"));
    assert.equal(registered.has("lacewing_dfdaemon_cache_bytes_bucket"), false);
    assert.equal(registered.has("lacewing_dfdaemon_download_bytes"), false);
  });

  it("every metric a panel queries is registered by a process", () => {
    assert.ok(exprs.length > 0);
    for (const { panel, expr } of exprs) {
      const names = metricNamesIn(expr);
      assert.ok(names.length > 0, `panel "${panel}" queries no metric: ${expr}`);
      for (const name of names) assert.ok(registered.has(name), `panel "${panel}" uses ${name}, which no process registers`);
    }
    for (const variable of dashboard.templating?.list ?? []) {
      const query = typeof variable.query === "string" ? variable.query : "";
      for (const name of query.match(/lacewing_[a-z_]+/g) ?? []) assert.ok(registered.has(name), `variable uses ${name}`);
    }
  });

  it("every label a panel filters or groups by is a label of the metrics it queries", () => {
    for (const { panel, expr } of exprs) {
      const metrics = metricNamesIn(expr).map((name) => registered.get(name));
      for (const { name, matchers } of selectorsIn(expr)) {
        for (const { label } of matchers)
          assert.ok(registered.get(name)?.labels.has(label) === true || TARGET_LABELS.has(label), `panel "${panel}": ${name} has no label ${label}`);
      }
      for (const label of groupingLabelsIn(expr))
        assert.ok(TARGET_LABELS.has(label) || metrics.some((m) => m?.labels.has(label)), `panel "${panel}" groups by ${label}, which its metrics lack`);
    }
  });

  it("has the panels the operators need", () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNamesIn(expr).map((n) => n.replace(/_bucket$/, ""))));
    for (const name of [
      "lacewing_dfdaemon_download_bytes_total",
      "lacewing_dfdaemon_upload_bytes_total",
      "lacewing_scheduler_traffic_bytes_total",
      "lacewing_scheduler_schedule_duration_seconds",
      "lacewing_scheduler_back_to_source_total",
      "lacewing_scheduler_peers",
      "lacewing_dfdaemon_piece_failures_total",
      "lacewing_dfdaemon_cache_bytes",
      "lacewing_dfdaemon_evictions_total",
      "lacewing_dfdaemon_proxy_requests_total",
      "lacewing_manager_jobs",
    ]) {
      assert.ok(used.has(name), `no panel queries ${name}`);
    }
    const all = exprs.map((e) => e.expr).join("\n");
    assert.match(all, /histogram_quantile\(0\.5,/);
    assert.match(all, /histogram_quantile\(0\.95,/);
    assert.match(all, /source="origin"/);
  });

  it("is shipped as a ConfigMap with the grafana_dashboard label", () => {
    const configMap = findDoc("ConfigMap", "dashboard.yaml");
    assert.ok(isMap(configMap["data"]) && "lacewing.json" in configMap["data"]);
    const labels = getPath(defaults, "dashboard.labels");
    assert.deepEqual(labels, { grafana_dashboard: "1" });
    assert.match(readFileSync(join(templatesDir, "dashboard.yaml"), "utf8"), /\.Files\.Get "dashboards\/lacewing\.json"/);
  });
});

// ---------------------------------------------------------------------------

describe("chart defaults agree with the processes", () => {
  const daemonDefaults = {
    peerPort: DEFAULTS.dfdaemon.peerPort,
    uploadPort: DEFAULTS.dfdaemon.uploadPort,
    proxyPort: DEFAULTS.dfdaemon.proxyPort,
    metricsPort: DEFAULTS.dfdaemon.metricsPort,
    socket: DEFAULTS.dfdaemon.socket,
    dataDir: DEFAULTS.dfdaemon.dataDir,
  };
  const expected: Record<string, unknown> = {
    "scheduler.port": DEFAULTS.scheduler.port,
    "scheduler.metricsPort": DEFAULTS.scheduler.metricsPort,
    "manager.port": DEFAULTS.manager.port,
    "manager.grpcPort": DEFAULTS.manager.grpcPort,
    ...Object.fromEntries(Object.entries(daemonDefaults).map(([k, v]) => [`dfdaemon.${k}`, v])),
    ...Object.fromEntries(Object.entries(daemonDefaults).map(([k, v]) => [`seedPeer.${k}`, v])),
    // Not a Lacewing process default but containerd's conventional registry config_path (DESIGN.md).
    "dfdaemon.containerd.configPath": "/etc/containerd/certs.d",
  };
  // Ports of services Lacewing does not run.
  const external = new Set(["database.port", "redis.port"]);

  for (const [path, value] of Object.entries(expected)) {
    it(`${path} is ${String(value)}`, () => {
      assert.equal(getPath(defaults, path), value);
    });
  }

  it("every port and path in values.yaml is checked above", () => {
    const found: string[] = [];
    const walk = (node: unknown, prefix: string) => {
      if (!isMap(node)) return;
      for (const [key, child] of Object.entries(node)) {
        const path = prefix ? `${prefix}.${key}` : key;
        if (/port$/i.test(key) && typeof child === "number") found.push(path);
        else if (/^(socket|dataDir|configPath)$/.test(key)) found.push(path);
        else walk(child, path);
      }
    };
    walk(defaults, "");
    const unchecked = found.filter((path) => !(path in expected) && !external.has(path));
    assert.deepEqual(unchecked, []);
    assert.ok(found.length >= Object.keys(expected).length);
  });

  it("the repository layout the checks rely on is present", () => {
    assert.ok(existsSync(join(chartDir, "Chart.yaml")));
    assert.equal(readYaml(join(chartDir, "Chart.yaml"))["apiVersion"], "v2");
  });
});
