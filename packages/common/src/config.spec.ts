import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { field, loadConfig } from "./config.js";
import { isLacewingError } from "./errors.js";
import { MAX_TIMER_MS } from "./units.js";

const dir = mkdtempSync(join(tmpdir(), "lacewing-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function yamlFile(text: string): string {
  const path = join(dir, `config-${fileCount++}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** Asserts the LW_ERR_USAGE of a bad flag: its message starts with `invalid --flag:` and contains every fragment. */
function assertFlagError(fn: () => unknown, flag: string, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isLacewingError(err), `not a LacewingError: ${String(err)}`);
    assert.deepEqual([err.code, err.kind], ["LW_ERR_USAGE", "invalid_argument"]);
    assert.ok(err.message.startsWith(`invalid ${flag}: `), err.message);
    for (const fragment of fragments) assert.ok(err.message.includes(fragment), `${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
    return true;
  });
}

/** Asserts an LW_ERR_CONFIG whose message contains every fragment. */
function assertConfigError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isLacewingError(err), `not a LacewingError: ${String(err)}`);
    assert.equal(err.code, "LW_ERR_CONFIG");
    assert.equal(err.kind, "invalid_argument");
    for (const fragment of fragments) assert.ok(err.message.includes(fragment), `${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
    return true;
  });
}

const schema = {
  port: field.port({ description: "listen port", default: 8002, env: "LW_PORT" }),
  host: field.string({ description: "listen host", default: "0.0.0.0", env: "LW_HOST" }),
  gcInterval: field.duration({ description: "gc interval", default: 60_000, env: "LW_GC_INTERVAL" }),
  cacheSize: field.bytes({ description: "cache size", default: 2 ** 30, env: "LW_CACHE_SIZE" }),
  seeds: field.list({ description: "seed peers", default: [], env: "LW_SEEDS" }),
  mode: field.enum(["normal", "seed"] as const, { description: "role", default: "normal", env: "LW_MODE" }),
  verbose: field.boolean({ description: "verbose", default: false, env: "LW_VERBOSE" }),
  ratio: field.number({ description: "a ratio", default: 0.5 }),
};

describe("loadConfig", () => {
  it("returns defaults when no source sets a key", () => {
    assert.deepEqual(loadConfig(schema), {
      port: 8002,
      host: "0.0.0.0",
      gcInterval: 60_000,
      cacheSize: 2 ** 30,
      seeds: [],
      mode: "normal",
      verbose: false,
      ratio: 0.5,
    });
  });

  it("applies defaults < YAML < env < flags", () => {
    const file = yamlFile("port: 9000\nhost: yaml-host\ngcInterval: 5m\nmode: seed\n");
    const env = { LW_PORT: "9100", LW_HOST: "env-host" };
    const flags = { port: "9200" };
    const config = loadConfig(schema, { file, env, flags });
    assert.equal(config.port, 9200, "flag beats env and YAML");
    assert.equal(config.host, "env-host", "env beats YAML");
    assert.equal(config.gcInterval, 300_000, "YAML beats default");
    assert.equal(config.mode, "seed");
    assert.equal(config.cacheSize, 2 ** 30, "default when nothing sets it");
  });

  it("ignores undefined flags and empty env values", () => {
    const file = yamlFile("host: yaml-host\n");
    const config = loadConfig(schema, { file, env: { LW_HOST: "" }, flags: { host: undefined } });
    assert.equal(config.host, "yaml-host");
  });

  it("parses units, booleans and numbers from strings", () => {
    const env = { LW_GC_INTERVAL: "1h30m", LW_CACHE_SIZE: "64MiB", LW_VERBOSE: "yes" };
    const config = loadConfig(schema, { env, flags: { ratio: "0.25" } });
    assert.equal(config.gcInterval, 5_400_000);
    assert.equal(config.cacheSize, 64 * 2 ** 20);
    assert.equal(config.verbose, true);
    assert.equal(config.ratio, 0.25);
  });

  it("reads lists from comma-separated strings and YAML sequences", () => {
    assert.deepEqual(loadConfig(schema, { env: { LW_SEEDS: "a:4000, b:4000,,c:4000 " } }).seeds, ["a:4000", "b:4000", "c:4000"]);
    const file = yamlFile("seeds:\n  - x:4000\n  - y:4000\n");
    assert.deepEqual(loadConfig(schema, { file }).seeds, ["x:4000", "y:4000"]);
  });

  it("reads a string map from YAML", () => {
    const mapSchema = { headers: field.map({ description: "extra headers", default: {} }) };
    const file = yamlFile("headers:\n  X-Team: infra\n  X-Retries: 3\n");
    assert.deepEqual(loadConfig(mapSchema, { file }).headers, { "X-Team": "infra", "X-Retries": "3" });
  });

  it("keeps a string map whose only key is 'error'", () => {
    const mapSchema = { headers: field.map({ description: "extra headers", default: {} }) };
    const file = yamlFile("headers:\n  error: ignore\n");
    assert.deepEqual(loadConfig(mapSchema, { file }).headers, { error: "ignore" });
  });

  it("accepts enum values and rejects others naming the choices", () => {
    assert.equal(loadConfig(schema, { flags: { mode: "seed" } }).mode, "seed");
    assertFlagError(() => loadConfig(schema, { flags: { mode: "leader" } }), "--mode", "normal, seed", "leader");
  });

  it("rejects an unknown YAML key, naming the key and the file", () => {
    const file = yamlFile("port: 9000\nprot: 9001\n");
    assertConfigError(() => loadConfig(schema, { file }), "prot", file);
  });

  it("rejects a bad value, naming the key and where it came from", () => {
    assertConfigError(() => loadConfig(schema, { file: yamlFile("port: 70000\n") }), "port", "config file");
    assertConfigError(() => loadConfig(schema, { env: { LW_PORT: "http" } }), "port", "environment LW_PORT");
    assertFlagError(() => loadConfig(schema, { flags: { gcInterval: "soon" } }), "--gc-interval");
    assertConfigError(() => loadConfig(schema, { env: { LW_CACHE_SIZE: "lots" } }), "cacheSize", "environment");
    assertConfigError(() => loadConfig(schema, { env: { LW_VERBOSE: "maybe" } }), "verbose", "environment");
    assertFlagError(() => loadConfig(schema, { flags: { ratio: "half" } }), "--ratio");
  });

  it("puts the bad key in the error details", () => {
    assert.throws(
      () => loadConfig(schema, { env: { LW_PORT: "x" } }),
      (err: unknown) => isLacewingError(err) && err.details["key"] === "port",
    );
  });

  it("rejects a missing required key, naming it and where it can be set", () => {
    const required = { managerAddr: field.string({ description: "manager address", required: true, env: "LW_MANAGER_ADDR" }) };
    assertConfigError(() => loadConfig(required, {}), "managerAddr", "LW_MANAGER_ADDR");
    assert.equal(loadConfig(required, { env: { LW_MANAGER_ADDR: "m:8081" } }).managerAddr, "m:8081");
  });

  it("runs a field's extra check", () => {
    const checked = { workers: field.number({ description: "workers", default: 1, check: (n) => (n >= 1 ? undefined : "must be at least 1") }) };
    assertFlagError(() => loadConfig(checked, { flags: { workers: "0" } }), "--workers", "must be at least 1");
    assert.equal(loadConfig(checked, { flags: { workers: "4" } }).workers, 4);
  });

  it("refuses a duration longer than a Node timer can wait, naming the key", () => {
    // 60d would make setTimeout fire at once instead of in two months.
    assertFlagError(() => loadConfig(schema, { flags: { gcInterval: "60d" } }), "--gc-interval", "at most 2147483647ms");
    assertConfigError(() => loadConfig(schema, { env: { LW_GC_INTERVAL: String(2 ** 31) } }), "gcInterval", "environment LW_GC_INTERVAL");
    assertConfigError(() => loadConfig(schema, { file: yamlFile("gcInterval: 25d\n") }), "gcInterval", "config file");
    assert.equal(loadConfig(schema, { flags: { gcInterval: String(MAX_TIMER_MS) } }).gcInterval, MAX_TIMER_MS);
    assert.equal(loadConfig(schema, { flags: { gcInterval: "24d" } }).gcInterval, 24 * 86_400_000);
  });

  it("lets a duration field that is no timer opt into a larger maximum", () => {
    const ages = {
      ttl: field.duration({ description: "an age compared with timestamps", default: 0, max: Number.POSITIVE_INFINITY }),
      window: field.duration({ description: "a bounded window", default: 0, max: 60_000 }),
    };
    assert.equal(loadConfig(ages, { flags: { ttl: "90d" } }).ttl, 90 * 86_400_000);
    assertFlagError(() => loadConfig(ages, { flags: { window: "2m" } }), "--window", "at most 60000ms");
  });

  it("treats an empty YAML file as no settings", () => {
    assert.equal(loadConfig(schema, { file: yamlFile("") }).port, 8002);
  });

  it("fails with LW_ERR_CONFIG for a missing file, invalid YAML and a non-mapping", () => {
    const missing = join(dir, "does-not-exist.yaml");
    assertConfigError(() => loadConfig(schema, { file: missing }), missing, "ENOENT");
    assertConfigError(() => loadConfig(schema, { file: yamlFile("port: [1, 2\n") }), "not valid YAML");
    assertConfigError(() => loadConfig(schema, { file: yamlFile("- 1\n- 2\n") }), "must be a mapping");
  });
});
