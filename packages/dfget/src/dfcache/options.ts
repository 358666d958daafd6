import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Command, CommanderError } from "commander";
import {
  DEFAULTS,
  ErrorCode,
  LacewingError,
  PERSISTENT_CACHE_BOUNDS,
  addSchemaOptions,
  field,
  loadConfig,
  persistentTaskIdProblem,
  replicasProblem,
  ttlProblem,
  type ConfigOf,
} from "@lacewing/common";
import { checkOutput, type CommandOutput } from "../cli/options.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * dfcache's config: like dfget's, every key can come from `--config FILE`,
 * the environment where an `env` is named, or a flag. `replicas` and `ttl`
 * are import's; the others every subcommand's.
 */
export const dfcacheConfigSchema = {
  socket: field.string({ description: "dfdaemon unix socket", default: DEFAULTS.dfdaemon.socket, env: "DFCACHE_SOCKET", placeholder: "<path>" }),
  replicas: field.number({
    description: "Hosts that keep a copy, this one included (import)",
    default: PERSISTENT_CACHE_BOUNDS.replicas.default,
    env: "DFCACHE_REPLICAS",
    check: replicasProblem,
  }),
  ttl: field.duration({
    description: "How long every copy is kept, e.g. 30m, 6h, 7d; 1s to 7d (import)",
    default: PERSISTENT_CACHE_BOUNDS.ttlMs.default,
    env: "DFCACHE_TTL",
    check: ttlProblem,
  }),
  timeout: field.duration({ description: "Overall deadline of an export, e.g. 30s, 5m; 0 for none", default: 0, env: "DFCACHE_TIMEOUT" }),
  logLevel: field.enum(LOG_LEVELS, { description: "Log level of the JSON logs on stderr", default: "silent", env: "DFCACHE_LOG_LEVEL" }),
};
export type DfcacheConfig = ConfigOf<typeof dfcacheConfigSchema>;

const IMPORT_ONLY = ["replicas", "ttl"] as const;

export type DfcacheCommand =
  | { kind: "import"; path: string; taskId: string }
  | { kind: "export"; taskId: string; output: string }
  | { kind: "stat"; taskId: string }
  | { kind: "delete"; taskId: string };

/** A validated invocation. */
export interface DfcacheRequest {
  command: DfcacheCommand;
  config: DfcacheConfig;
  /** Absolute. */
  socket: string;
  json: boolean;
}

export type ParseResult = { kind: "run"; request: RawRequest } | { kind: "exit"; code: 0 };

/** The command line as typed, before validation. */
export interface RawRequest {
  command: DfcacheCommand;
  json: boolean;
  configFile: string | undefined;
  flags: Partial<Record<keyof typeof dfcacheConfigSchema, unknown>>;
}

function usage(message: string): LacewingError {
  return new LacewingError(ErrorCode.usage, "invalid_argument", message);
}

export function createDfcacheCommand(output?: CommandOutput): {
  program: Command;
  chosen: () => { name: string; command: Command; args: string[] } | undefined;
} {
  let chosen: { name: string; command: Command; args: string[] } | undefined;
  const program = new Command("dfcache")
    .description("Put files into the Lacewing P2P network as persistent cache tasks (no origin), kept on a number of hosts until they expire.")
    .helpOption("-h, --help", "Show this help")
    .exitOverride()
    .configureOutput({ outputError: () => undefined, ...(output === undefined ? {} : { writeOut: output.writeOut }) });
  const sub = (name: string, description: string, except: ReadonlyArray<keyof typeof dfcacheConfigSchema>): Command => {
    const command = program
      .command(name)
      .description(description)
      .option("--json", "Print one JSON object with the result on stdout")
      .option("--config <file>", "YAML config file with any of the settings below (camelCase keys)");
    addSchemaOptions(command, dfcacheConfigSchema, except)
      .helpOption("-h, --help", "Show this help")
      .exitOverride()
      .configureOutput({ outputError: () => undefined, ...(output === undefined ? {} : { writeOut: output.writeOut }) })
      .action((...args: unknown[]) => {
        chosen = { name, command, args: args.slice(0, -2) as string[] };
      });
    return command;
  };
  sub("import", "Import FILE as a persistent cache task; prints its id", ["timeout"])
    .argument("<file>", "the file to import")
    .option("--id <id>", "The task id: 64 lowercase hex digits (default: the file's sha256)");
  sub("export", "Place the persistent cache task ID at -O FILE, from this node's copy or from peers", IMPORT_ONLY)
    .argument("<id>", "the task id")
    .requiredOption("-O, --output <file>", "Where to place the file");
  sub("stat", "Show where the persistent cache task ID stands: here, at the scheduler, its replicas and expiry", [...IMPORT_ONLY, "timeout"]).argument(
    "<id>",
    "the task id",
  );
  sub("delete", "Remove the persistent cache task ID from every host that holds it", [...IMPORT_ONLY, "timeout"]).argument("<id>", "the task id");
  return { program, chosen: () => chosen };
}

/** Parses argv (without node and script); usage errors throw LW_ERR_USAGE. */
export function parseDfcacheCommandLine(argv: readonly string[], output?: CommandOutput): ParseResult {
  const { program, chosen } = createDfcacheCommand(output);
  if (argv.length === 0) throw usage("a command is required: import, export, stat or delete (see dfcache --help)");
  try {
    program.parse([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return { kind: "exit", code: 0 };
      throw usage(`${err.message.replace(/^error: /, "")} (see dfcache --help)`);
    }
    throw err;
  }
  const picked = chosen();
  if (picked === undefined) throw usage("a command is required: import, export, stat or delete (see dfcache --help)");
  const options = picked.command.opts<Record<string, unknown>>();
  const flags: RawRequest["flags"] = {};
  for (const key of Object.keys(dfcacheConfigSchema) as Array<keyof typeof dfcacheConfigSchema>)
    if (picked.command.getOptionValueSource(key) === "cli") flags[key] = options[key];
  const argument = picked.args[0] ?? "";
  const command: DfcacheCommand =
    picked.name === "import"
      ? { kind: "import", path: argument, taskId: typeof options["id"] === "string" ? options["id"] : "" }
      : picked.name === "export"
        ? { kind: "export", taskId: argument, output: String(options["output"]) }
        : { kind: picked.name === "stat" ? "stat" : "delete", taskId: argument };
  return { kind: "run", request: { command, json: options["json"] === true, configFile: options["config"] as string | undefined, flags } };
}

/** Checks everything that can be checked without the daemon, so bad input never reaches it and nothing is half-written. */
export async function resolveDfcacheRequest(raw: RawRequest, options: { env: NodeJS.ProcessEnv; cwd: string }): Promise<DfcacheRequest> {
  const config = loadConfig(dfcacheConfigSchema, {
    file: raw.configFile === undefined ? undefined : resolve(options.cwd, raw.configFile),
    env: options.env,
    flags: raw.flags,
  });
  const command = raw.command;
  const checkId = (id: string, flag: string): void => {
    const problem = persistentTaskIdProblem(id);
    if (problem !== undefined) throw usage(`invalid ${flag} ${JSON.stringify(id.slice(0, 80))}: ${problem}`);
  };
  let resolved: DfcacheCommand;
  switch (command.kind) {
    case "import":
      if (command.taskId !== "") checkId(command.taskId, "--id");
      resolved = { ...command, path: await checkInput(command.path, options.cwd) };
      break;
    case "export":
      checkId(command.taskId, "id");
      resolved = { ...command, output: await checkOutput(command.output, options.cwd) };
      break;
    default:
      checkId(command.taskId, "id");
      resolved = command;
  }
  return { command: resolved, config, socket: resolve(options.cwd, config.socket), json: raw.json };
}

/** The file to import must be a regular file this user can read. */
async function checkInput(path: string, cwd: string): Promise<string> {
  if (path.trim() === "") throw inputError("the file to import is empty");
  const absolute = resolve(cwd, path);
  const info = await stat(absolute).catch((err: NodeJS.ErrnoException) => err);
  if (info instanceof Error) throw inputError(`cannot read ${absolute}: ${info.code === "ENOENT" ? "no such file" : (info.code ?? info.message)}`);
  if (!info.isFile()) throw inputError(`${absolute} is not a regular file`);
  try {
    await access(absolute, constants.R_OK);
  } catch {
    throw inputError(`cannot read ${absolute}: permission denied`);
  }
  return absolute;
}

function inputError(message: string): LacewingError {
  return new LacewingError(ErrorCode.input, "invalid_argument", message);
}
