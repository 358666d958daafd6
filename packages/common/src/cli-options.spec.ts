import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { addSchemaOptions, cliOptionsOf } from "./cli-options.js";
import { field, loadConfig } from "./config.js";

const schema = {
  dataDir: field.string({ description: "Where data lives", default: "/var/lib/x", env: "X_DATA_DIR", placeholder: "<dir>" }),
  seed: field.boolean({ description: "Run as a seed", default: false }),
  keepStorage: field.boolean({ description: "Keep the cache", default: true }),
  progress: field.boolean({ description: "Never draw a progress bar", default: true, negatable: true }),
  gcInterval: field.duration({ description: "How often to collect", default: 60_000 }),
  pieceMemory: field.bytes({ description: "Piece memory", default: 64 * 1024 * 1024 }),
  registries: field.list({ description: "Registries", default: [] }),
  logLevel: field.enum(["info", "debug"], { description: "Log level", default: "info" }),
  headers: field.map({ description: "Headers (YAML only)", default: {} }),
};

/** Parses `argv` with the schema's options and loads the config from what was typed. */
function configFrom(argv: string[]) {
  const command = addSchemaOptions(new Command("x").exitOverride(), schema);
  command.parse(argv, { from: "user" });
  return loadConfig(schema, { flags: command.opts() });
}

describe("flags from the config schema", () => {
  it("names each key's flag kebab-cased with a placeholder by kind, shows defaults as typed and the environment variable, and leaves YAML-only keys out", () => {
    const options = new Map(cliOptionsOf(schema).map((option) => [option.key, option]));
    assert.deepEqual(
      [...options.values()].map((option) => option.flags),
      [
        "--data-dir <dir>",
        "--seed",
        "--keep-storage <true|false>",
        "--no-progress",
        "--gc-interval <duration>",
        "--piece-memory <size>",
        "--registries <a,b,...>",
        "--log-level <info|debug>",
      ],
    );
    assert.equal(options.get("dataDir")!.description, "Where data lives (default /var/lib/x; env X_DATA_DIR)");
    assert.equal(options.get("gcInterval")!.description, "How often to collect (default 1m)");
    assert.equal(options.get("pieceMemory")!.description, "Piece memory (default 64MiB)");
    assert.equal(options.get("seed")!.description, "Run as a seed");
    assert.deepEqual(
      cliOptionsOf(schema, ["dataDir", "seed"]).map((option) => option.key),
      ["keepStorage", "progress", "gcInterval", "pieceMemory", "registries", "logLevel"],
    );
  });

  it("reads each kind from the command line into the config, and leaves an absent flag to the default", () => {
    assert.deepEqual(
      configFrom([
        "--seed",
        "--keep-storage",
        "false",
        "--no-progress",
        "--gc-interval",
        "5m",
        "--piece-memory",
        "8MiB",
        "--registries",
        "a,b",
        "--registries",
        "c",
      ]),
      {
        ...loadConfig(schema),
        seed: true,
        keepStorage: false,
        progress: false,
        gcInterval: 300_000,
        pieceMemory: 8 * 1024 * 1024,
        registries: ["a", "b", "c"],
      },
    );
    assert.deepEqual(configFrom([]), loadConfig(schema));
  });

  it("fails a bad flag value as a usage error naming the flag", () => {
    assert.throws(
      () => configFrom(["--gc-interval", "soon"]),
      (err: Error & { code?: string }) => err.code === "LW_ERR_USAGE" && err.message.startsWith("invalid --gc-interval: expected a duration"),
    );
  });
});
