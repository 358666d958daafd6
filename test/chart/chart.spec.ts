// The Helm chart, checked with real helm (test/helpers/helm.ts): `helm lint
// --strict` and `helm template` with the default values, both examples and
// values that reach every else branch; then the rendered objects against the
// Kubernetes OpenAPI schemas (kubernetes-models), against the binaries they
// run (every --flag in the command's --help, every LACEWING_* variable in its
// config schema), against each other (named ports, selectors, ConfigMaps and
// Secrets), and the values against the processes' defaults. The Grafana
// dashboard's PromQL is checked against the metrics the processes register.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import { Issuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { parse } from "yaml";
import { createClient, schedulerv1 } from "@lacewing/api";
import { DEFAULTS, parseSchedulerEntry, tlsMaterialOf, type Role } from "@lacewing/common";
import { dfdaemonSchema, loadDfdaemonConfig } from "@lacewing/dfdaemon";
import { loadManagerConfig, managerConfigSchema } from "@lacewing/manager";
import { SchedulerServer, loadSchedulerConfig, schedulerConfigSchema } from "@lacewing/scheduler";
import { TARGET_LABELS, dashboardQueries, groupingLabelsIn, metricNamesIn, registeredMetrics, selectorsIn } from "../helpers/dashboard.js";
import { CHART_DIR, helmLint, helmTemplate, helmUnavailable, type Manifest, type RenderOptions } from "../helpers/helm.js";
import { BIN, ROOT, runCommand } from "../helpers/processes.js";
import { skipUnlessAvailable } from "../helpers/requirements.js";

const templatesDir = join(CHART_DIR, "templates");
const examplesDir = join(CHART_DIR, "examples");
const skip = await skipUnlessAvailable("chart tests with helm", { other: [helmUnavailable()] });

type Values = Record<string, unknown>;

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readYaml(path: string): Values {
  const value: unknown = parse(readFileSync(path, "utf8"));
  assert.ok(isMap(value), `${path} is not a YAML mapping`);
  return value;
}

function getPath(values: unknown, path: string): unknown {
  let node = values;
  for (const part of path.split(".")) {
    if (!isMap(node) || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

const defaults = readYaml(join(CHART_DIR, "values.yaml"));
const chart = readYaml(join(CHART_DIR, "Chart.yaml"));
const schema = JSON.parse(readFileSync(join(CHART_DIR, "values.schema.json"), "utf8")) as Record<string, unknown>;
const examples = readdirSync(examplesDir)
  .filter((name) => name.endsWith(".yaml"))
  .sort();
const appVersion = String(chart["appVersion"]);
const defaultImage = `${String(getPath(defaults, "image.repository"))}:${appVersion}`;

// ---------------------------------------------------------------------------
// What is rendered, and what every rendering must satisfy.

interface Scenario {
  name: string;
  options: RenderOptions;
  /** The image every container must run. */
  image: string;
  /** Secrets the values name for the chart to read but not create. */
  userSecrets?: string[];
  /** Non-default checks of this scenario's objects. */
  check?: (objects: Rendered) => void | Promise<void>;
}

interface Port {
  name?: string;
  containerPort: number;
  hostPort?: number;
}

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }>;
  ports?: Port[];
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  securityContext?: {
    runAsUser?: number;
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}

interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  emptyDir?: { medium?: string; sizeLimit?: string };
  configMap?: { name: string };
  secret?: { secretName: string; defaultMode?: number };
  projected?: { sources?: Array<{ serviceAccountToken?: { path: string }; configMap?: { name: string } }> };
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  dnsPolicy?: string;
  serviceAccountName?: string;
  priorityClassName?: string;
  affinity?: unknown;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number };
}

/** The objects of one `helm template`, with lookups by kind and component. */
class Rendered {
  constructor(readonly objects: Manifest[]) {}

  all(kind: string): Manifest[] {
    return this.objects.filter((o) => o.kind === kind);
  }

  /** The one object of `kind` whose app.kubernetes.io/component label is `component`. */
  one(kind: string, component: string): Manifest {
    const found = this.all(kind).filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] === component);
    assert.equal(found.length, 1, `one ${kind} for ${component} (found ${found.length})`);
    return found[0]!;
  }

  has(kind: string, component: string): boolean {
    return this.all(kind).some((o) => o.metadata.labels?.["app.kubernetes.io/component"] === component);
  }

  named(kind: string, name: string): Manifest | undefined {
    return this.objects.find((o) => o.kind === kind && o.metadata.name === name);
  }

  workloads(): Manifest[] {
    return this.objects.filter((o) => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind));
  }
}

function podOf(workload: Manifest): PodSpec {
  const template = workload.spec?.["template"] as { spec?: PodSpec } | undefined;
  assert.ok(template?.spec, `${workload.kind} ${workload.metadata.name} has no pod template`);
  return template.spec;
}

function podLabelsOf(workload: Manifest): Record<string, string> {
  return (workload.spec?.["template"] as { metadata?: { labels?: Record<string, string> } }).metadata?.labels ?? {};
}

function containersOf(workload: Manifest): Container[] {
  const pod = podOf(workload);
  return [...(pod.initContainers ?? []), ...pod.containers];
}

/** The value after `flag` in a container's args. */
function flagValue(container: Container, flag: string): string | undefined {
  const args = container.args ?? [];
  const at = args.indexOf(flag);
  return at < 0 ? undefined : args[at + 1];
}

function portNamed(container: Container, name: string): number | undefined {
  return container.ports?.find((p) => p.name === name)?.containerPort;
}

function envOf(container: Container, name: string): NonNullable<Container["env"]>[number] | undefined {
  return container.env?.find((e) => e.name === name);
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/DaemonSet": DaemonSet,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/ServiceAccount": ServiceAccount,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "cert-manager.io/v1/Certificate": Certificate,
  "cert-manager.io/v1/Issuer": Issuer,
};

// The binary (args[0]) and, for dfdaemon and the manager, the subcommand whose --help lists a container's flags.
const BINARIES: Record<string, string> = {
  dfdaemon: BIN.dfdaemon,
  "lacewing-scheduler": BIN.scheduler,
  "lacewing-manager": BIN.manager,
};
const SUBCOMMANDS: Record<string, ReadonlySet<string>> = {
  dfdaemon: new Set(["run", "status", "containerd-config", "gc", "node-topology"]),
  "lacewing-manager": new Set(["run", "certs"]),
};

/** Long options listed in a commander --help text. */
function optionsInHelp(help: string): Set<string> {
  const options = new Set<string>();
  for (const match of help.matchAll(/^\s+(?:-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*)/gm)) options.add(match[1] ?? "");
  return options;
}

const helpCache = new Map<string, Promise<Set<string>>>();
function optionsOf(binary: string, subcommand: string | undefined): Promise<Set<string>> {
  const key = `${binary} ${subcommand ?? ""}`;
  let options = helpCache.get(key);
  if (options === undefined) {
    options = runCommand(BINARIES[binary]!, [...(subcommand === undefined ? [] : [subcommand]), "--help"]).then((result) => {
      assert.equal(result.code, 0, `${key} --help: ${result.stderr}`);
      return optionsInHelp(result.stdout);
    });
    helpCache.set(key, options);
  }
  return options;
}

const ENV_OF: Record<string, ReadonlySet<string>> = {
  dfdaemon: new Set(Object.values(dfdaemonSchema).flatMap((f) => (f.env === undefined ? [] : [f.env]))),
  "lacewing-scheduler": new Set(Object.values(schedulerConfigSchema).flatMap((f) => (f.env === undefined ? [] : [f.env]))),
  "lacewing-manager": new Set(Object.values(managerConfigSchema).flatMap((f) => (f.env === undefined ? [] : [f.env]))),
};

/** Checks every rendering must pass, whatever the values. Returns how many flags it checked. */
async function checkInvariants(rendered: Rendered, scenario: Scenario): Promise<number> {
  let flags = 0;
  for (const object of rendered.objects) {
    const model = MODELS[`${object.apiVersion}/${object.kind}`];
    assert.ok(model, `${object.kind} ${object.metadata.name}: no schema for ${object.apiVersion}/${object.kind}`);
    // Throws with the path of the first violation (types, enums, required fields) of the OpenAPI schema.
    assert.doesNotThrow(() => new model(object as never).validate(), `${object.kind} ${object.metadata.name} violates its schema`);
    assert.ok(object.metadata.name.length <= 63, `${object.metadata.name} fits a DNS label`);
  }

  for (const workload of rendered.workloads()) {
    const pod = podOf(workload);
    const where = `${workload.kind} ${workload.metadata.name}`;
    const selector = (workload.spec?.["selector"] as { matchLabels: Record<string, string> }).matchLabels;
    assert.ok(selects(selector, podLabelsOf(workload)), `${where} selects its own pods`);
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    for (const volume of volumes.values()) {
      if (volume.configMap)
        assert.ok(rendered.named("ConfigMap", volume.configMap.name), `${where} mounts ConfigMap ${volume.configMap.name}, which the chart renders`);
      if (volume.secret) {
        const name = volume.secret.secretName;
        const issued = rendered.all("Certificate").some((c) => (c.spec as { secretName?: string }).secretName === name);
        assert.ok(
          rendered.named("Secret", name) !== undefined || issued || scenario.userSecrets?.includes(name),
          `${where} mounts Secret ${name}, which is neither rendered, issued by a Certificate, nor named in the values`,
        );
      }
    }
    const claims = new Set(((workload.spec?.["volumeClaimTemplates"] as Array<{ metadata: { name: string } }> | undefined) ?? []).map((c) => c.metadata.name));

    for (const container of containersOf(workload)) {
      const what = `${where} container ${container.name}`;
      assert.equal(container.image, scenario.image, `${what} runs the chart's image`);
      assert.equal(container.command, undefined, `${what} keeps the image's entrypoint (tini as PID 1)`);
      const [binary, maybeSub] = container.args ?? [];
      assert.ok(binary !== undefined && binary in BINARIES, `${what} runs a Lacewing binary first in args, not ${binary}`);
      const subcommand = SUBCOMMANDS[binary] === undefined ? undefined : maybeSub !== undefined && SUBCOMMANDS[binary].has(maybeSub) ? maybeSub : "run";
      const options = await optionsOf(binary, subcommand);
      for (const arg of (container.args ?? []).filter((a) => a.startsWith("--"))) {
        assert.ok(options.has(arg), `${what} passes ${arg}, which \`${binary} ${subcommand ?? ""}\` does not have (it has ${[...options].join(" ")})`);
        flags++;
      }
      for (const { name, valueFrom } of container.env ?? []) {
        if (/^(LACEWING|DFDAEMON)_/.test(name)) assert.ok(ENV_OF[binary]?.has(name), `${what} sets ${name}, which ${binary} does not read`);
        const ref = valueFrom?.secretKeyRef;
        if (ref !== undefined) {
          const secret = rendered.named("Secret", ref.name);
          // A Secret the chart does not render must be one the user named in the values.
          if (secret) assert.ok(ref.key in (secret.stringData ?? secret.data ?? {}), `${what}: Secret ${ref.name} has key ${ref.key}`);
          else assert.ok(scenario.userSecrets?.includes(ref.name), `${what} reads Secret ${ref.name}, which is neither rendered nor named in the values`);
        }
      }
      for (const mount of container.volumeMounts ?? [])
        assert.ok(volumes.has(mount.name) || claims.has(mount.name), `${what} mounts ${mount.name}, which the pod defines`);
      const config = flagValue(container, "--config") ?? flagValue(container, "--base-config");
      if (config === TOPOLOGY_CONFIG) {
        // Written by the node-topology init container into the pod's emptyDir.
        assert.ok(
          container.volumeMounts?.some((m) => m.name === "topology" && m.mountPath === "/run/lacewing-topology"),
          `${what} mounts the file node-topology wrote`,
        );
        assert.ok(
          pod.initContainers?.some((c) => flagValue(c, "--out") === TOPOLOGY_CONFIG),
          `${what}: an init container writes ${TOPOLOGY_CONFIG}`,
        );
      } else if (config !== undefined) {
        assert.equal(config, "/etc/lacewing/config.yaml");
        assert.ok(
          container.volumeMounts?.some((m) => m.name === "config" && m.mountPath === "/etc/lacewing"),
          `${what} mounts the --config file`,
        );
      }
      for (const probe of [container.livenessProbe, container.readinessProbe]) {
        if (probe?.httpGet === undefined) continue;
        assert.ok(portNamed(container, String(probe.httpGet.port)) !== undefined, `${what} probes a port it declares`);
        assert.ok(["/healthz", "/readyz"].includes(probe.httpGet.path));
      }
      // Flags and declared ports are the same numbers, so Services and probes reach the listeners.
      for (const [flag, port] of [
        ["--peer-port", "peer"],
        ["--upload-port", "upload"],
        ["--proxy-port", "proxy"],
        ["--metrics-port", "metrics"],
      ] as const) {
        const value = flagValue(container, flag);
        if (value !== undefined && portNamed(container, port) !== undefined)
          assert.equal(Number(value), portNamed(container, port), `${what}: ${flag} is its ${port} port`);
      }
      for (const [flag, port] of [
        ["--listen", binary === "lacewing-manager" ? "http" : "grpc"],
        ["--grpc-listen", "grpc"],
      ] as const) {
        const value = flagValue(container, flag);
        if (value !== undefined) assert.equal(Number(value.split(":").at(-1)), portNamed(container, port), `${what}: ${flag} is its ${port} port`);
      }
      assert.equal(container.securityContext?.allowPrivilegeEscalation, false, `${what} cannot gain privileges`);
    }
  }

  for (const service of rendered.all("Service")) {
    const selector = service.spec?.["selector"] as Record<string, string>;
    const pods = rendered.workloads().filter((w) => selects(selector, podLabelsOf(w)));
    assert.equal(pods.length, 1, `Service ${service.metadata.name} selects one workload`);
    const declared = new Set(pods.flatMap((w) => podOf(w).containers.flatMap((c) => (c.ports ?? []).map((p) => p.name))));
    for (const port of service.spec?.["ports"] as Array<{ name: string; targetPort: string }>)
      assert.ok(declared.has(port.targetPort), `Service ${service.metadata.name} targets port ${port.targetPort}, which its pods declare`);
  }
  for (const monitor of rendered.all("ServiceMonitor")) {
    const spec = monitor.spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
    const services = rendered.all("Service").filter((s) => selects(spec.selector.matchLabels, s.metadata.labels ?? {}));
    assert.equal(services.length, 1, `ServiceMonitor ${monitor.metadata.name} selects one Service`);
    for (const endpoint of spec.endpoints) {
      assert.ok(
        (services[0]!.spec?.["ports"] as Array<{ name: string }>).some((p) => p.name === endpoint.port),
        `ServiceMonitor ${monitor.metadata.name} scrapes a port its Service has`,
      );
      assert.equal(endpoint.path, "/metrics");
    }
  }
  for (const pdb of rendered.all("PodDisruptionBudget")) {
    const selector = (pdb.spec?.["selector"] as { matchLabels: Record<string, string> }).matchLabels;
    assert.equal(rendered.workloads().filter((w) => selects(selector, podLabelsOf(w))).length, 1, `PDB ${pdb.metadata.name} covers one workload`);
  }
  return flags;
}

// ---------------------------------------------------------------------------
// Scenarios: defaults, the examples, and values that reach the other branches.

const example = (name: string): string => join(examplesDir, name);

function daemonContainer(rendered: Rendered, component: "dfdaemon" | "seed-peer"): Container {
  const workload = rendered.one(component === "dfdaemon" ? "DaemonSet" : "StatefulSet", component);
  return podOf(workload).containers[0]!;
}

const scenarios: Scenario[] = [
  {
    name: "default values",
    options: {},
    image: defaultImage,
    check: (r) => {
      for (const [kind, count] of Object.entries({
        Deployment: 1,
        StatefulSet: 2,
        DaemonSet: 1,
        Service: 4,
        PodDisruptionBudget: 3,
        ServiceMonitor: 0,
        ServiceAccount: 1,
        ClusterRole: 1,
        ClusterRoleBinding: 1,
      }))
        assert.equal(r.all(kind).length, count, kind);
      assert.equal(r.all("ConfigMap").length, 0, "no config files, no dashboard");
      // The schedulers: a headless Service whose one name has an A record per replica, not-ready ones too.
      const schedulers = r.one("Service", "scheduler");
      assert.equal(schedulers.spec?.["clusterIP"], "None");
      assert.equal(schedulers.spec?.["publishNotReadyAddresses"], true, "a starting replica keeps its record, so task ownership does not flap");
      const statefulSet = r.one("StatefulSet", "scheduler");
      assert.equal(statefulSet.spec?.["serviceName"], schedulers.metadata.name);
      assert.equal(statefulSet.spec?.["replicas"], 3);
      const address = "lacewing-scheduler.lacewing.svc.cluster.local:8002";
      assert.deepEqual(parseSchedulerEntry(address), { host: "lacewing-scheduler.lacewing.svc.cluster.local", port: 8002 });
      for (const component of ["dfdaemon", "seed-peer"] as const) assert.equal(flagValue(daemonContainer(r, component), "--scheduler"), address, component);
      const manager = podOf(r.one("Deployment", "manager")).containers[0]!;
      assert.equal(flagValue(manager, "--scheduler"), address);
      // Seed peers: dfdaemon --seed on a PVC; node daemons: no --seed.
      const seed = daemonContainer(r, "seed-peer");
      const daemon = daemonContainer(r, "dfdaemon");
      assert.ok(seed.args?.includes("--seed"));
      assert.ok(!daemon.args?.includes("--seed"));
      assert.deepEqual(
        (r.one("StatefulSet", "seed-peer").spec?.["volumeClaimTemplates"] as Array<{ metadata: { name: string } }>).map((c) => c.metadata.name),
        ["data"],
      );
      for (const container of [seed, daemon]) {
        assert.equal(flagValue(container, "--advertise-ip"), "$(POD_IP)");
        assert.deepEqual(envOf(container, "POD_IP")?.valueFrom, { fieldRef: { fieldPath: "status.podIP" } }, "POD_IP comes from the downward API");
        for (const [flag, value] of Object.entries({
          "--data-dir": DEFAULTS.dfdaemon.dataDir,
          "--socket": DEFAULTS.dfdaemon.socket,
          "--peer-port": String(DEFAULTS.dfdaemon.peerPort),
          "--upload-port": String(DEFAULTS.dfdaemon.uploadPort),
          "--proxy-port": String(DEFAULTS.dfdaemon.proxyPort),
          "--metrics-port": String(DEFAULTS.dfdaemon.metricsPort),
          "--listen-ip": "0.0.0.0",
          "--log-level": "info",
        }))
          assert.equal(flagValue(container, flag), value, `${container.name} ${flag}`);
      }
      // The DaemonSet: cache and socket on hostPaths, hosts.toml written by an init container, on the host network.
      const pod = podOf(r.one("DaemonSet", "dfdaemon"));
      const hostPaths = Object.fromEntries((pod.volumes ?? []).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath?.path]));
      assert.deepEqual(hostPaths, { data: "/var/lib/lacewing", socket: "/run/lacewing", "containerd-certs": "/etc/containerd/certs.d" });
      const init = pod.initContainers?.find((c) => c.name === "containerd-config");
      assert.ok(init);
      assert.deepEqual(init.args?.slice(0, 3), ["dfdaemon", "containerd-config", "--registry"]);
      assert.equal(flagValue(init, "--registry"), "docker.io,ghcr.io,quay.io,registry.k8s.io");
      assert.equal(flagValue(init, "--config-path"), "/etc/containerd/certs.d");
      assert.equal(flagValue(init, "--proxy-port"), flagValue(daemon, "--proxy-port"), "hosts.toml points at the port the mirror listens on");
      assert.ok(init.volumeMounts?.some((m) => m.name === "containerd-certs" && m.mountPath === "/etc/containerd/certs.d"));
      assert.equal(pod.hostNetwork, true, "the mirror listens on the node's loopback, which only the host network reaches");
      assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
      assert.equal(
        daemon.ports?.find((p) => p.name === "proxy"),
        undefined,
        "the proxy port is published nowhere",
      );
      assert.equal(flagValue(daemon, "--proxy-registries"), "docker.io,ghcr.io,quay.io,registry.k8s.io", "the mirror serves what containerd was pointed at");
      assert.equal(flagValue(daemon, "--proxy-listen-ip"), undefined, "the mirror keeps its loopback default");
      assertTlsWiring(r, (role) => `lacewing-tls-${role}`);
      assertChartPki(r);
      // Embedded manager: one replica, recreated (two pods must never share the embedded database), a generated token.
      const deployment = r.one("Deployment", "manager");
      assert.equal(deployment.spec?.["replicas"], 1);
      assert.deepEqual(deployment.spec?.["strategy"], { type: "Recreate" });
      assert.equal(flagValue(manager, "--database-url"), undefined);
      assert.equal(manager.securityContext?.readOnlyRootFilesystem, false, "the embedded database writes inside the container");
      const token = envOf(manager, "LACEWING_MANAGER_TOKEN")?.valueFrom?.secretKeyRef;
      assert.deepEqual(token, { name: "lacewing-manager", key: "token" });
      assert.match(r.named("Secret", "lacewing-manager")?.stringData?.["token"] ?? "", /^[A-Za-z0-9]{40}$/);
      for (const pdb of r.all("PodDisruptionBudget")) assert.equal(pdb.spec?.["maxUnavailable"], 1);
      // Zones without hand-written labels: both kinds of daemon take idc and location from their node.
      for (const component of ["dfdaemon", "seed-peer"] as const) {
        const init = assertTopologyFromNode(r, component);
        assert.equal(flagValue(init, "--base-config"), undefined, "no config values, nothing to start from");
        assert.equal(flagValue(daemonContainer(r, component), "--idc"), undefined);
      }
      assertNodeReader(r, "lacewing");
      assert.equal(r.all("ServiceAccount")[0]?.["automountServiceAccountToken"], false, "no pod gets the token but the init containers");
    },
  },
  {
    name: "examples/small-cluster.yaml",
    options: { valuesFiles: [example("small-cluster.yaml")] },
    image: defaultImage,
    check: async (r) => {
      const pod = podOf(r.one("DaemonSet", "dfdaemon"));
      assert.equal(pod.hostNetwork, true);
      assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet", "on the host network the pod still resolves the schedulers");
      assert.equal(
        pod.containers[0]!.ports?.find((p) => p.name === "proxy"),
        undefined,
        "no proxy port is published",
      );
      assert.equal(flagValue(pod.initContainers![0]!, "--registry"), "docker.io,ghcr.io,harbor.internal.example.com");
      assert.equal(r.one("StatefulSet", "scheduler").spec?.["replicas"], 1);
      assert.equal(r.all("PodDisruptionBudget").length, 0);
      const monitors = r.all("ServiceMonitor");
      assert.deepEqual(monitors.map((m) => m.metadata.labels?.["app.kubernetes.io/component"]).sort(), ["dfdaemon", "manager", "scheduler", "seed-peer"]);
      for (const monitor of monitors) assert.equal(monitor.metadata.labels?.["release"], "kube-prometheus-stack");
      const dashboard = r.named("ConfigMap", "lacewing-dashboard");
      assert.ok(dashboard, "the dashboard ships as a ConfigMap");
      assert.equal(dashboard.metadata.labels?.["grafana_dashboard"], "1");
      assert.equal(dashboard.data?.["lacewing.json"], (await readFile(join(CHART_DIR, "dashboards/lacewing.json"), "utf8")).trimEnd());
    },
  },
  {
    name: "examples/external-db.yaml",
    options: { valuesFiles: [example("external-db.yaml")] },
    image: "registry.example.internal/lacewing/lacewing:0.1.0",
    userSecrets: ["lacewing-pg", "lacewing-redis", "lacewing-api"],
    check: (r) => {
      const deployment = r.one("Deployment", "manager");
      assert.equal(deployment.spec?.["replicas"], 3);
      assert.deepEqual(deployment.spec?.["strategy"], { type: "RollingUpdate" });
      const manager = podOf(deployment).containers[0]!;
      assert.equal(flagValue(manager, "--database-url"), "$(DATABASE_URL)");
      assert.equal(flagValue(manager, "--redis-url"), "$(REDIS_URL)");
      assert.equal(manager.securityContext?.readOnlyRootFilesystem, true);
      // The password stays in its Secret; Kubernetes splices it into the URL.
      assert.deepEqual(envOf(manager, "DATABASE_PASSWORD")?.valueFrom?.secretKeyRef, { name: "lacewing-pg", key: "password" });
      assert.equal(envOf(manager, "DATABASE_URL")?.value, "postgres://lacewing:$(DATABASE_PASSWORD)@postgres.example.internal:5432/lacewing?sslmode=require");
      const names = manager.env?.map((e) => e.name) ?? [];
      assert.ok(names.indexOf("DATABASE_PASSWORD") < names.indexOf("DATABASE_URL"), "a $(VAR) reference needs the variable defined before it");
      assert.deepEqual(envOf(manager, "REDIS_URL")?.valueFrom?.secretKeyRef, { name: "lacewing-redis", key: "url" });
      assert.deepEqual(envOf(manager, "LACEWING_MANAGER_TOKEN")?.valueFrom?.secretKeyRef, { name: "lacewing-api", key: "token" });
      assert.deepEqual(
        r.all("Secret").map((secret) => secret.metadata.name),
        ["lacewing-tls-ca", "lacewing-tls-manager", "lacewing-tls-scheduler", "lacewing-tls-seed", "lacewing-tls-peer"],
        "every credential comes from the user's Secrets but the cluster's certificates",
      );
      assert.equal(r.one("PodDisruptionBudget", "manager").spec?.["minAvailable"], 2, "minAvailable wins over maxUnavailable");
      assert.ok(podOf(r.one("StatefulSet", "scheduler")).affinity);
      assert.equal(flagValue(daemonContainer(r, "seed-peer"), "--idc"), "eu-west-1");
      assert.equal(flagValue(daemonContainer(r, "dfdaemon"), "--location"), "eu|west-1|a");
      assert.equal(podOf(r.one("DaemonSet", "dfdaemon")).priorityClassName, "system-node-critical");
      const claim = (r.one("StatefulSet", "seed-peer").spec?.["volumeClaimTemplates"] as Array<{ spec: { storageClassName: string } }>)[0];
      assert.equal(claim?.spec.storageClassName, "fast-ssd");
    },
  },
  {
    name: "external schedulers; database and Redis URLs in the chart's Secret; no ServiceAccount, PVC or containerd, off the host network",
    options: {
      set: {
        "scheduler.enabled": false,
        "scheduler.externalAddresses": ["10.0.0.1:8002", "10.0.0.2:8002"],
        "database.url": "postgres://lacewing:pw@db:5432/lacewing",
        "redis.url": "redis://:pw@redis:6379/0",
        "manager.apiToken.value": "a-token-from-the-values",
        "serviceAccount.create": false,
        "seedPeer.persistence.enabled": false,
        "dfdaemon.containerd.enabled": false,
        "dfdaemon.hostNetwork": false,
        "image.tag": "0.2.0-rc.1",
      },
    },
    image: `${String(getPath(defaults, "image.repository"))}:0.2.0-rc.1`,
    check: (r) => {
      assert.equal(r.has("StatefulSet", "scheduler"), false);
      assert.equal(r.has("Service", "scheduler"), false);
      for (const container of [daemonContainer(r, "dfdaemon"), daemonContainer(r, "seed-peer"), podOf(r.one("Deployment", "manager")).containers[0]!])
        assert.equal(flagValue(container, "--scheduler"), "10.0.0.1:8002,10.0.0.2:8002");
      const secret = r.named("Secret", "lacewing-manager");
      assert.deepEqual(secret?.stringData, {
        token: "a-token-from-the-values",
        "database-url": "postgres://lacewing:pw@db:5432/lacewing",
        "redis-url": "redis://:pw@redis:6379/0",
      });
      const manager = podOf(r.one("Deployment", "manager")).containers[0]!;
      assert.deepEqual(envOf(manager, "DATABASE_URL")?.valueFrom?.secretKeyRef, { name: "lacewing-manager", key: "database-url" });
      assert.deepEqual(envOf(manager, "REDIS_URL")?.valueFrom?.secretKeyRef, { name: "lacewing-manager", key: "redis-url" });
      assert.equal(r.all("ServiceAccount").length, 0);
      for (const workload of r.workloads()) assert.equal(podOf(workload).serviceAccountName, "default");
      const seed = r.one("StatefulSet", "seed-peer");
      assert.equal(seed.spec?.["volumeClaimTemplates"], undefined);
      assert.ok(podOf(seed).volumes?.find((v) => v.name === "data")?.emptyDir !== undefined, "seed data on an emptyDir without a PVC");
      const pod = podOf(r.one("DaemonSet", "dfdaemon"));
      assert.deepEqual(
        pod.initContainers?.map((c) => c.name),
        ["node-topology"],
        "no containerd-config",
      );
      assertNodeReader(r, "default");
      assert.equal(
        pod.volumes?.some((v) => v.name === "containerd-certs"),
        false,
      );
      assert.equal(pod.hostNetwork, false);
      assert.equal(flagValue(pod.containers[0]!, "--proxy-registries"), undefined, "no registries, no mirror: it refuses every request");
    },
  },
  {
    name: "database and Redis from parts without password Secrets; config files, topology, extra args and env for every component",
    options: {
      set: {
        fullnameOverride: "lw",
        "database.host": "pg.internal",
        "redis.host": "redis.internal",
        "redis.tls": true,
        "manager.config": { taskConcurrency: 2 },
        "scheduler.config": { logLevel: "debug" },
        "seedPeer.config": { gcInterval: "5m" },
        "dfdaemon.config": { gcInterval: "2m" },
        "seedPeer.location": "eu|west|a",
        "dfdaemon.idc": "dc-1",
        "scheduler.extraArgs": ["--log-level", "warn"],
        "dfdaemon.extraArgs": ["--task-ttl", "1h"],
        "dfdaemon.containerd.extraArgs": ["--no-default"],
        "manager.extraEnv": [{ name: "LACEWING_MANAGER_QUEUE_PREFIX", value: "lw-test" }],
        "dashboard.enabled": true,
        "dashboard.namespace": "monitoring",
      },
    },
    image: defaultImage,
    check: (r) => {
      const manager = podOf(r.one("Deployment", "manager")).containers[0]!;
      assert.equal(envOf(manager, "DATABASE_URL")?.value, "postgres://lacewing@pg.internal:5432/lacewing?sslmode=prefer");
      assert.equal(envOf(manager, "REDIS_URL")?.value, "rediss://redis.internal:6379/0", "redis.tls picks the rediss scheme");
      assert.equal(envOf(manager, "DATABASE_PASSWORD"), undefined);
      assert.equal(envOf(manager, "LACEWING_MANAGER_QUEUE_PREFIX")?.value, "lw-test");
      for (const [component, kind, config] of [
        ["manager", "Deployment", { taskConcurrency: 2 }],
        ["scheduler", "StatefulSet", { logLevel: "debug" }],
        ["seed-peer", "StatefulSet", { gcInterval: "5m" }],
        ["dfdaemon", "DaemonSet", { gcInterval: "2m" }],
      ] as const) {
        const configMap = r.named("ConfigMap", `lw-${component}-config`);
        assert.deepEqual(parse(configMap?.data?.["config.yaml"] ?? ""), config, `${component} config file`);
        const workload = r.one(kind, component);
        const container = podOf(workload).containers[0]!;
        if (component === "seed-peer" || component === "dfdaemon") {
          // A daemon reads the file its node-topology init container made from the config values (JSON, which is YAML).
          assert.equal(flagValue(container, "--config"), TOPOLOGY_CONFIG, component);
          const init = podOf(workload).initContainers?.find((c) => c.name === "node-topology");
          assert.equal(init && flagValue(init, "--base-config"), "/etc/lacewing/config.yaml", component);
          assert.deepEqual(JSON.parse(configMap?.data?.["config.yaml"] ?? ""), config, `${component}: the config file is JSON`);
        } else assert.equal(flagValue(container, "--config"), "/etc/lacewing/config.yaml", component);
        assert.equal(podOf(workload).volumes?.find((v) => v.name === "config")?.configMap?.name, `lw-${component}-config`);
        assert.match(workload.metadata.name, /^lw-/, "fullnameOverride names every object");
      }
      const scheduler = podOf(r.one("StatefulSet", "scheduler")).containers[0]!;
      assert.deepEqual(scheduler.args?.slice(-2), ["--log-level", "warn"], "extraArgs come last");
      assert.equal(flagValue(daemonContainer(r, "seed-peer"), "--location"), "eu|west|a");
      assert.equal(flagValue(daemonContainer(r, "dfdaemon"), "--idc"), "dc-1");
      assert.deepEqual(daemonContainer(r, "dfdaemon").args?.slice(-2), ["--task-ttl", "1h"]);
      assert.equal(podOf(r.one("DaemonSet", "dfdaemon")).initContainers?.[0]?.args?.at(-1), "--no-default");
      assert.equal(r.named("ConfigMap", "lw-dashboard")?.metadata.namespace, "monitoring");
    },
  },
  {
    name: "idc and location by hand for the node daemons, topology from nodes off for the seed peers",
    options: { set: { "dfdaemon.idc": "dc-1", "dfdaemon.location": "eu|west|a", "seedPeer.topology.source": "none" } },
    image: defaultImage,
    check: (r) => {
      for (const component of ["dfdaemon", "seed-peer"] as const) {
        const pod = podOf(r.one(component === "dfdaemon" ? "DaemonSet" : "StatefulSet", component));
        assert.equal(
          pod.initContainers?.find((c) => c.name === "node-topology"),
          undefined,
          `${component} reads no node`,
        );
        assert.equal(
          pod.volumes?.find((v) => v.name === "kube-api-access"),
          undefined,
        );
        assert.equal(flagValue(pod.containers[0]!, "--config"), undefined);
      }
      assert.equal(flagValue(daemonContainer(r, "dfdaemon"), "--idc"), "dc-1");
      assert.equal(flagValue(daemonContainer(r, "dfdaemon"), "--location"), "eu|west|a");
      assert.equal(r.all("ClusterRole").length + r.all("ClusterRoleBinding").length, 0, "nothing reads nodes, so no one may");
    },
  },
  {
    name: "topology from other labels, a named service account, RBAC made elsewhere",
    options: {
      set: {
        "dfdaemon.topology.regionLabel": "example.com/dc",
        "dfdaemon.topology.zoneLabel": "example.com/rack",
        "dfdaemon.idc": "dc-by-hand",
        "seedPeer.enabled": false,
        "serviceAccount.name": "lacewing-nodes",
      },
    },
    image: defaultImage,
    check: (r) => {
      // idc by hand (a flag, which wins over the file), location still from the node.
      assertTopologyFromNode(r, "dfdaemon", { region: "example.com/dc", zone: "example.com/rack" });
      assert.equal(flagValue(daemonContainer(r, "dfdaemon"), "--idc"), "dc-by-hand");
      assertNodeReader(r, "lacewing-nodes");
    },
  },
  {
    name: "topology from nodes without the chart's RBAC",
    options: { set: { "rbac.create": false } },
    image: defaultImage,
    check: (r) => {
      assertTopologyFromNode(r, "dfdaemon");
      assert.equal(r.all("ClusterRole").length + r.all("ClusterRoleBinding").length, 0);
    },
  },
  {
    name: "database, Redis and API token from existing Secrets",
    options: {
      set: {
        "database.existingSecret": "pg-url",
        "redis.existingSecret": "redis-url",
        "redis.existingSecretKey": "uri",
        "manager.apiToken.existingSecret": "api",
        "manager.apiToken.existingSecretKey": "bearer",
      },
    },
    image: defaultImage,
    userSecrets: ["pg-url", "redis-url", "api"],
    check: (r) => {
      const manager = podOf(r.one("Deployment", "manager")).containers[0]!;
      assert.deepEqual(envOf(manager, "DATABASE_URL")?.valueFrom?.secretKeyRef, { name: "pg-url", key: "url" });
      assert.deepEqual(envOf(manager, "REDIS_URL")?.valueFrom?.secretKeyRef, { name: "redis-url", key: "uri" });
      assert.deepEqual(envOf(manager, "LACEWING_MANAGER_TOKEN")?.valueFrom?.secretKeyRef, { name: "api", key: "bearer" });
      assert.equal(r.all("Secret").filter((secret) => !secret.metadata.name.includes("-tls-")).length, 0);
      assert.equal(r.one("Deployment", "manager").spec?.["replicas"], 2);
    },
  },
  {
    name: "certificates from cert-manager, with a CA the chart bootstraps",
    options: { set: { "tls.mode": "cert-manager" } },
    image: defaultImage,
    check: (r) => {
      assert.equal(r.all("Secret").filter((secret) => secret.metadata.name.includes("-tls-")).length, 0, "cert-manager writes the Secrets");
      const certificates = new Map(r.all("Certificate").map((c) => [c.metadata.name, c.spec as Record<string, unknown>]));
      assert.equal(certificates.get("lacewing-tls-ca")?.["isCA"], true);
      for (const role of ROLE_NAMES) {
        const spec = certificates.get(`lacewing-tls-${role}`);
        assert.equal(spec?.["commonName"], `lacewing:${role}`, `the ${role} certificate carries its role`);
        assert.deepEqual(spec?.["usages"], ["digital signature", "server auth", "client auth"]);
        assert.deepEqual(spec?.["issuerRef"], { name: "lacewing-ca", kind: "Issuer", group: "cert-manager.io" });
      }
      assert.deepEqual(
        r
          .all("Issuer")
          .map((i) => i.metadata.name)
          .sort(),
        ["lacewing-ca", "lacewing-selfsigned"],
      );
      assertTlsWiring(r, (role) => `lacewing-tls-${role}`);
    },
  },
  {
    name: "certificates from cert-manager, issued by the cluster's own ClusterIssuer",
    options: {
      set: {
        "tls.mode": "cert-manager",
        "tls.certManager.createIssuer": false,
        "tls.certManager.issuerRef.name": "corp-ca",
        "tls.certManager.issuerRef.kind": "ClusterIssuer",
      },
    },
    image: defaultImage,
    check: (r) => {
      assert.equal(r.all("Issuer").length, 0);
      for (const certificate of r.all("Certificate"))
        assert.deepEqual((certificate.spec as Record<string, unknown>)["issuerRef"], { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" });
    },
  },
  {
    name: "certificates from Secrets the user made",
    options: {
      set: { "tls.mode": "existing", "tls.existingSecrets": { manager: "m-tls", scheduler: "s-tls", seed: "seed-tls", peer: "node-tls" } },
    },
    image: defaultImage,
    userSecrets: ["m-tls", "s-tls", "seed-tls", "node-tls"],
    check: (r) => {
      assert.equal(r.all("Secret").filter((secret) => secret.metadata.name.includes("-tls-")).length, 0);
      const names: Record<Role, string> = { manager: "m-tls", scheduler: "s-tls", seed: "seed-tls", peer: "node-tls" };
      assertTlsWiring(r, (role) => names[role]);
    },
  },
];

const ROLE_NAMES: readonly Role[] = ["manager", "scheduler", "seed", "peer"];

/** The config file the node-topology init container writes for the daemon. */
const TOPOLOGY_CONFIG = "/run/lacewing-topology/config.yaml";

/**
 * The daemon of `component` takes idc and location from its node: an init
 * container reads its own Node (NODE_NAME from spec.nodeName) with a
 * service-account token that only it mounts, and the daemon runs with the
 * file it writes; the service account may get nodes and nothing else.
 */
function assertTopologyFromNode(
  r: Rendered,
  component: "dfdaemon" | "seed-peer",
  labels = { region: "topology.kubernetes.io/region", zone: "topology.kubernetes.io/zone" },
): Container {
  const pod = podOf(r.one(component === "dfdaemon" ? "DaemonSet" : "StatefulSet", component));
  const init = pod.initContainers?.find((c) => c.name === "node-topology");
  assert.ok(init, `${component} has the node-topology init container`);
  assert.deepEqual(init.args?.slice(0, 2), ["dfdaemon", "node-topology"]);
  assert.equal(flagValue(init, "--out"), TOPOLOGY_CONFIG);
  assert.equal(flagValue(init, "--region-label"), labels.region);
  assert.equal(flagValue(init, "--zone-label"), labels.zone);
  assert.deepEqual(envOf(init, "NODE_NAME")?.valueFrom, { fieldRef: { fieldPath: "spec.nodeName" } }, "the node name comes from the downward API");
  assert.equal(init.securityContext?.runAsNonRoot, true, "reading the API needs no root");
  const tokenMount = "/var/run/secrets/kubernetes.io/serviceaccount";
  assert.ok(init.volumeMounts?.some((m) => m.name === "kube-api-access" && m.mountPath === tokenMount && m.readOnly === true));
  const daemon = pod.containers[0]!;
  assert.ok(!daemon.volumeMounts?.some((m) => m.name === "kube-api-access"), "the daemon itself holds no API token");
  assert.equal(flagValue(daemon, "--config"), TOPOLOGY_CONFIG);
  const projected = pod.volumes?.find((v) => v.name === "kube-api-access")?.projected;
  assert.ok(projected?.sources?.some((source) => source.serviceAccountToken?.path === "token"));
  assert.ok(projected?.sources?.some((source) => source.configMap?.name === "kube-root-ca.crt"));
  assert.equal(pod.volumes?.find((v) => v.name === "topology")?.emptyDir?.medium, "Memory");
  return init;
}

/** The ClusterRole the init containers use: get nodes, nothing else, bound to the chart's service account. */
function assertNodeReader(r: Rendered, serviceAccount: string, namespace = "lacewing"): void {
  const [role] = r.all("ClusterRole");
  assert.ok(role, "a ClusterRole for the node-topology init containers");
  assert.equal(r.all("ClusterRole").length, 1);
  assert.deepEqual(role.rules, [{ apiGroups: [""], resources: ["nodes"], verbs: ["get"] }]);
  const [binding] = r.all("ClusterRoleBinding");
  assert.deepEqual(binding?.["roleRef"], { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name });
  assert.deepEqual(binding?.["subjects"], [{ kind: "ServiceAccount", name: serviceAccount, namespace }]);
}

/** Every workload runs with --tls-dir on its role's Secret, mounted read-only and readable by its user's group. */
function assertTlsWiring(r: Rendered, secretOf: (role: Role) => string): void {
  for (const [kind, component, role] of [
    ["Deployment", "manager", "manager"],
    ["StatefulSet", "scheduler", "scheduler"],
    ["StatefulSet", "seed-peer", "seed"],
    ["DaemonSet", "dfdaemon", "peer"],
  ] as const) {
    if (!r.has(kind, component)) continue;
    const pod = podOf(r.one(kind, component));
    const container = pod.containers[0]!;
    const dir = flagValue(container, "--tls-dir");
    assert.equal(dir, "/etc/lacewing-tls", `${component} runs with TLS`);
    assert.ok(
      container.volumeMounts?.some((m) => m.name === "tls" && m.mountPath === dir && m.readOnly === true),
      `${component} mounts its certificate`,
    );
    const volume = pod.volumes?.find((v) => v.name === "tls");
    assert.equal(volume?.secret?.secretName, secretOf(role), `${component} mounts the ${role} certificate`);
    assert.equal(volume?.secret?.defaultMode, 0o440, `${component}: the key is readable by the pod's group only`);
    assert.ok(!(container.args ?? []).includes("--insecure"), `${component} is never insecure`);
  }
}

/**
 * The chart's own PKI: a CA and one certificate per role whose common name
 * is lacewing:<role>, each accepted by the processes (the checks a
 * --tls-dir goes through) and good for a real mutual-TLS call.
 */
function assertChartPki(r: Rendered): void {
  const decode = (secret: Manifest | undefined, key: string): string => Buffer.from(String(secret?.data?.[key] ?? ""), "base64").toString("utf8");
  const ca = r.named("Secret", "lacewing-tls-ca");
  assert.equal(ca?.type, "kubernetes.io/tls");
  for (const role of ROLE_NAMES) {
    const secret = r.named("Secret", `lacewing-tls-${role}`);
    assert.equal(secret?.type, "kubernetes.io/tls");
    assert.equal(decode(secret, "ca.crt"), decode(ca, "tls.crt"), `the ${role} Secret carries the cluster CA`);
    const material = tlsMaterialOf({ ca: decode(secret, "ca.crt"), cert: decode(secret, "tls.crt"), key: decode(secret, "tls.key") }, role);
    assert.equal(material.identity.subject, `lacewing:${role}`);
  }
}

// Which process runs as which user (the Dockerfile's header says why).
function assertUsers(r: Rendered): void {
  for (const [kind, component] of [
    ["Deployment", "manager"],
    ["StatefulSet", "scheduler"],
    ["StatefulSet", "seed-peer"],
  ] as const) {
    if (!r.has(kind, component)) continue;
    const pod = podOf(r.one(kind, component));
    assert.equal(pod.securityContext?.runAsNonRoot, true, `${component} runs as non-root`);
    assert.equal(pod.securityContext?.runAsUser, 65532, `${component} runs as the image's user`);
    for (const container of pod.containers) {
      assert.equal(container.securityContext?.runAsUser, undefined, `${component} does not override the user`);
      assert.deepEqual(container.securityContext?.capabilities?.drop, ["ALL"]);
      assert.equal(container.securityContext?.capabilities?.add, undefined);
    }
  }
  if (r.has("StatefulSet", "seed-peer"))
    assert.equal(podOf(r.one("StatefulSet", "seed-peer")).securityContext?.fsGroup, 65532, "the PVC is writable for 65532");
  if (r.has("DaemonSet", "dfdaemon")) {
    for (const container of containersOf(r.one("DaemonSet", "dfdaemon"))) {
      if (container.name === "node-topology") {
        assert.equal(container.securityContext?.runAsUser, 65532, "node-topology only reads the API and writes an emptyDir");
        continue;
      }
      // Root for the node's directories (hostPath cache and socket, containerd's certs.d), nothing more.
      assert.equal(container.securityContext?.runAsUser, 0, `${container.name} is root for the hostPaths`);
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    }
    const daemon = podOf(r.one("DaemonSet", "dfdaemon")).containers[0]!;
    assert.deepEqual(daemon.securityContext?.capabilities, { drop: ["ALL"], add: ["CHOWN", "DAC_OVERRIDE", "FOWNER"] });
  }
}

describe("helm lint and helm template", { skip }, () => {
  const renders = new Map<string, Rendered>();
  let totalFlags = 0;

  before(async () => {
    for (const scenario of scenarios) {
      const { manifests, result } = await helmTemplate(scenario.options);
      assert.equal(result.code, 0, `helm template (${scenario.name}): ${result.stderr}`);
      renders.set(scenario.name, new Rendered(manifests));
    }
  });

  for (const scenario of scenarios) {
    describe(scenario.name, () => {
      it("passes helm lint --strict", async () => {
        const lint = await helmLint(scenario.options);
        assert.equal(lint.code, 0, lint.stdout + lint.stderr);
        assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      });

      it("renders objects valid against the Kubernetes schemas that run the chart's image with flags the binaries know", async () => {
        const rendered = renders.get(scenario.name);
        assert.ok(rendered && rendered.objects.length > 0);
        totalFlags += await checkInvariants(rendered, scenario);
      });

      it("runs the scheduler, manager and seed peers as 65532 and only the node dfdaemon as root", () => {
        assertUsers(renders.get(scenario.name)!);
      });

      if (scenario.check)
        it("renders what these values ask for", async () => {
          await scenario.check!(renders.get(scenario.name)!);
        });
    });
  }

  it("makes certificates the processes use for real mutual TLS: the manager's lists hosts, a peer's may not", async () => {
    const rendered = renders.get("default values")!;
    const decode = (role: string, key: string): string =>
      Buffer.from(String(rendered.named("Secret", `lacewing-tls-${role}`)?.data?.[key] ?? ""), "base64").toString("utf8");
    const securityOf = (role: Role) =>
      ({ mode: "tls", material: tlsMaterialOf({ ca: decode(role, "ca.crt"), cert: decode(role, "tls.crt"), key: decode(role, "tls.key") }, role) }) as const;
    const scheduler = new SchedulerServer({ config: { listen: "127.0.0.1:0", logLevel: "silent" }, security: securityOf("scheduler") });
    await scheduler.start();
    const manager = createClient(schedulerv1.Scheduler, scheduler.address, { security: securityOf("manager"), serverRoles: ["scheduler"] });
    const peer = createClient(schedulerv1.Scheduler, scheduler.address, { security: securityOf("peer"), serverRoles: ["scheduler"] });
    try {
      assert.deepEqual((await manager.listHosts({})).hosts, []);
      await assert.rejects(peer.listHosts({}), /needs a manager certificate/);
    } finally {
      manager.close();
      peer.close();
      await scheduler.close();
    }
  });

  it("checked a flag of every kind of container", () => {
    assert.deepEqual([...helpCache.keys()].sort(), [
      "dfdaemon containerd-config",
      "dfdaemon node-topology",
      "dfdaemon run",
      "lacewing-manager run",
      "lacewing-scheduler ",
    ]);
    assert.ok(totalFlags >= 100, `only ${totalFlags} flags checked`);
  });

  it("the invariants catch a broken object: a schema violation, a flag the binary lacks, a foreign image", async () => {
    const base = renders.get("default values")!;
    const scenario = scenarios[0]!;
    const broken = (mutate: (daemonSet: Manifest) => void): Rendered => {
      const objects = structuredClone(base.objects);
      mutate(objects.find((o) => o.kind === "DaemonSet")!);
      return new Rendered(objects);
    };
    const container = (d: Manifest) => podOf(d).containers[0]!;
    await assert.rejects(
      checkInvariants(
        broken((d) => ((container(d).ports![0] as unknown as { containerPort: string }).containerPort = "peer")),
        scenario,
      ),
      /violates its schema/,
    );
    await assert.rejects(
      checkInvariants(
        broken((d) => container(d).args!.push("--no-such-flag")),
        scenario,
      ),
      /passes --no-such-flag/,
    );
    await assert.rejects(
      checkInvariants(
        broken((d) => (container(d).image = "busybox")),
        scenario,
      ),
      /runs the chart's image/,
    );
    await assert.rejects(
      checkInvariants(
        broken((d) => (container(d).command = ["dfdaemon"])),
        scenario,
      ),
      /keeps the image's entrypoint/,
    );
  });

  describe("values the chart refuses", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "lacewing-chart-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    for (const [name, values, message] of [
      ["a value of the wrong type", { scheduler: { replicas: "three" } }, /at '\/scheduler\/replicas': got string, want integer/],
      ["an unknown top-level key", { schedulers: { replicas: 3 } }, /additional properties 'schedulers' not allowed/],
      ["a misspelt nested key", { dfdaemon: { hostnetwork: true } }, /at '\/dfdaemon': additional properties 'hostnetwork' not allowed/],
      ["an out-of-range port", { dfdaemon: { proxyPort: 70000 } }, /at '\/dfdaemon\/proxyPort': maximum/],
      ["only a database (external mode needs Redis too)", { database: { url: "postgres://db/lacewing" } }, /configure both database and redis/],
      [
        "containerd on with no registries",
        { dfdaemon: { containerd: { registries: [] } } },
        /dfdaemon\.containerd\.registries must list at least one registry/,
      ],
      ["no scheduler at all", { scheduler: { enabled: false } }, /scheduler\.externalAddresses is required/],
      [
        "the containerd mirror off the host network (its proxy would face the pod network)",
        { dfdaemon: { hostNetwork: false } },
        /dfdaemon\.containerd\.enabled needs dfdaemon\.hostNetwork: true/,
      ],
      ["an unknown TLS mode", { tls: { mode: "none" } }, /at '\/tls\/mode'/],
      ["an unknown topology source", { dfdaemon: { topology: { source: "labels" } } }, /at '\/dfdaemon\/topology\/source'/],
      ["a topology label that is no label key", { seedPeer: { topology: { zoneLabel: "zone label" } } }, /at '\/seedPeer\/topology\/zoneLabel'/],
      ["cert-manager with no issuer", { tls: { mode: "cert-manager", certManager: { createIssuer: false } } }, /tls\.certManager\.issuerRef\.name is required/],
      [
        "existing certificates without a Secret for a role",
        { tls: { mode: "existing", existingSecrets: { manager: "m" } } },
        /tls\.existingSecrets\.(scheduler|seed|peer) is required/,
      ],
    ] as const) {
      it(`fails helm template on ${name}, naming it`, async () => {
        const file = join(dir, `${name.replace(/\W+/g, "-")}.yaml`);
        await writeFile(file, JSON.stringify(values));
        const { result } = await helmTemplate({ valuesFiles: [file] });
        assert.notEqual(result.code, 0, "helm template accepted it");
        assert.match(result.stderr, message);
      });
    }
  });
});

describe("values.yaml and values.schema.json", () => {
  it("is a draft-07 schema that forbids unknown top-level keys", () => {
    assert.equal(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert.equal(schema["additionalProperties"], false);
  });

  it("ships the two documented examples", () => {
    assert.deepEqual(examples, ["external-db.yaml", "small-cluster.yaml"]);
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

  it("every .Values reference in the templates exists in values.yaml", () => {
    // helm renders a missing value as empty instead of failing, so this is checked from the source.
    const missing = new Set<string>();
    for (const name of readdirSync(templatesDir)) {
      for (const match of readFileSync(join(templatesDir, name), "utf8").matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const path = (match[1] ?? "").slice(1);
        if (getPath(defaults, path) === undefined) missing.add(path);
      }
    }
    assert.deepEqual([...missing], []);
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

  it("the default image is the one the Dockerfile labels and scripts/build-image.sh pushes", () => {
    // build-image.sh reads both values with sed from these exact lines.
    assert.match(readFileSync(join(CHART_DIR, "values.yaml"), "utf8"), /^image:\n {2}repository: ghcr\.io\/lacewing\/lacewing\n/m);
    assert.match(readFileSync(join(CHART_DIR, "Chart.yaml"), "utf8"), new RegExp(`^appVersion: "${appVersion.replace(/\./g, "\\.")}"$`, "m"));
    assert.equal(getPath(defaults, "image.tag"), "", "the tag follows appVersion");
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    assert.match(dockerfile, new RegExp(`^ARG VERSION=${appVersion.replace(/\./g, "\\.")}$`, "m"), "docker build . labels the chart's appVersion");
    for (const name of ["dfdaemon", "dfget", "scheduler", "manager"]) {
      const pkg = JSON.parse(readFileSync(join(ROOT, "packages", name, "package.json"), "utf8")) as { version: string };
      assert.equal(pkg.version, appVersion, `packages/${name} is version ${appVersion}`);
    }
  });
});

// ---------------------------------------------------------------------------
// Dashboard: every metric and label it queries must be one the processes
// register, read from their real metric factories (not from a copied list).

const registered = registeredMetrics();

describe("Grafana dashboard", () => {
  const dashboardText = readFileSync(join(CHART_DIR, "dashboards/lacewing.json"), "utf8");

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
    assert.ok(existsSync(join(CHART_DIR, "Chart.yaml")));
    assert.equal(chart["apiVersion"], "v2");
  });
});
