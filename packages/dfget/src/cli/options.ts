import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { Command, CommanderError } from "commander";
import {
  ErrorCode,
  DEFAULTS,
  LacewingError,
  addSchemaOptions,
  field,
  flagOf,
  formatDigest,
  isPieceLength,
  loadConfig,
  parseDigest,
  checkSourceUrl,
  isS3Url,
  type ConfigOf,
  PIECE_LENGTH_RULE,
} from "@lacewing/common";
import type { DownloadInit } from "../download.js";
import { isHubUrl } from "./hub-url.js";

/** Each file is a download, and each download takes daemon piece memory and origin or peer connections: a bound keeps one dfget from crowding a node. */
export const MAX_CONCURRENT_FILES = 64;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * dfget's config: every key can come from `--config FILE` (YAML, these keys),
 * the environment where an `env` is named, or a flag. Flags win.
 */
export const configSchema = {
  socket: field.string({ description: "dfdaemon unix socket", default: DEFAULTS.dfdaemon.socket, env: "DFGET_SOCKET", placeholder: "<path>" }),
  timeout: field.duration({ description: "Overall deadline of the download, e.g. 30s, 5m, 1h; 0 for none", default: 0, env: "DFGET_TIMEOUT" }),
  reconnectTimeout: field.duration({
    description: "How long to wait for the local dfdaemon to come back when it goes away mid-download (a restart); the download then resumes. 0 fails at once",
    default: 180_000,
    env: "DFGET_RECONNECT_TIMEOUT",
  }),
  tag: field.string({ description: "Tag that separates otherwise identical URLs into different tasks", default: "", placeholder: "<tag>" }),
  application: field.string({ description: "Application name, part of the task id", default: "", placeholder: "<name>" }),
  filter: field.list({ description: "Query parameters to drop before deriving the task id (repeatable)", default: [], placeholder: "<param>" }),
  headers: field.map({ description: "Request headers for the origin (YAML only; -H adds to them)", default: {} }),
  disableBackToSource: field.boolean({ description: "Fail instead of fetching from the origin when no peer has the file", default: false }),
  pieceLength: field.bytes({
    description: "Piece size, e.g. 1MiB; 0 lets the content length decide",
    default: 0,
    check: (v) => (v === 0 || isPieceLength(v) ? undefined : `must be 0 or ${PIECE_LENGTH_RULE}`),
  }),
  progress: field.boolean({ description: "Never draw a progress bar (one is drawn only when stderr is a terminal)", default: true, negatable: true }),
  s3ForcePathStyle: field.boolean({
    description: "s3:// URLs: path-style addressing (ENDPOINT/bucket/key), as AWS_S3_FORCE_PATH_STYLE=true also asks",
    default: false,
  }),
  logLevel: field.enum(LOG_LEVELS, { description: "Log level of the JSON logs on stderr", default: "silent", env: "DFGET_LOG_LEVEL" }),
  include: field.list({
    description: "With -r: download only keys matching this glob (repeatable; * stays within a path segment, ** spans segments, ? is one character)",
    default: [],
    placeholder: "<glob>",
  }),
  exclude: field.list({ description: "With -r: skip keys matching this glob (repeatable; wins over --include)", default: [], placeholder: "<glob>" }),
  maxConcurrent: field.number({
    description: `With -r: files downloaded at once, 1-${MAX_CONCURRENT_FILES}`,
    default: 4,
    check: (v) => (Number.isInteger(v) && v >= 1 && v <= MAX_CONCURRENT_FILES ? undefined : `must be a whole number from 1 to ${MAX_CONCURRENT_FILES}`),
  }),
};
export type DfgetConfig = ConfigOf<typeof configSchema>;

/** Settings that mean nothing for one file: typed without -r they are a mistake (in a config file they may serve both). */
const DIRECTORY_ONLY_FLAGS = ["include", "exclude", "maxConcurrent"] as const satisfies ReadonlyArray<keyof typeof configSchema>;

/** Everything a validated invocation needs; the daemon gets `download` as is. */
export interface DfgetRequest {
  /** Absolute path of the daemon socket. */
  socket: string;
  download: DownloadInit & { url: string; outputPath: string; timeoutMs: bigint };
  /** 0 when there is no deadline. */
  timeoutMs: number;
  /** How long to wait for a daemon that went away mid-download; 0 fails at once. */
  reconnectTimeoutMs: number;
  json: boolean;
  progress: boolean;
  logLevel: LogLevel;
}

/** The command line as typed, before validation. */
export interface CommandLine {
  url: string;
  output: string;
  digest: string | undefined;
  headers: string[];
  json: boolean;
  /** -r: the URL is a directory, the output a directory. */
  recursive: boolean;
  configFile: string | undefined;
  /** Flags the user gave, keyed like `configSchema`; absent flags are left out so config and env apply. */
  flags: Partial<Record<keyof typeof configSchema, unknown>>;
}

export type ParseResult = { kind: "run"; commandLine: CommandLine } | { kind: "exit"; code: 0 };

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export interface CommandOutput {
  /** Where --help goes. */
  writeOut: (text: string) => void;
}

export function createCommand(output?: CommandOutput): Command {
  const command = new Command("dfget")
    .description("Download a file through the local Lacewing dfdaemon (peer-to-peer, verified, written atomically).")
    .argument("<url>", "http(s) URL, s3://bucket/key, or hf://[datasets/|spaces/]<owner>/<repo>/<path>[@<revision>] (HF_TOKEN, HF_ENDPOINT)")
    .requiredOption("-O, --output <file>", "Where to place the downloaded file (with -r, the directory to download into)")
    .option("-r, --recursive", "Download every file below the URL, a directory (s3://bucket/prefix/, hf://owner/repo), into the -O directory")
    .option("--digest <alg:hex>", "Expected sha256:<hex> or sha512:<hex> of the whole file; the daemon verifies it")
    .option("-H, --header <header>", "Request header 'Name: value' for the origin (repeatable)", collect)
    .option("--json", "Print one JSON object with the result on stdout")
    .option("--config <file>", "YAML config file with any of the settings below (camelCase keys)");
  return addSchemaOptions(command, configSchema)
    .helpOption("-h, --help", "Show this help")
    .exitOverride()
    .configureOutput({ outputError: () => undefined, ...(output === undefined ? {} : { writeOut: output.writeOut }) });
}

/** Parses argv (without node and script); usage errors throw LW_ERR_USAGE. */
export function parseCommandLine(argv: readonly string[], output?: CommandOutput): ParseResult {
  const command = createCommand(output);
  try {
    command.parse([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return { kind: "exit", code: 0 };
      throw new LacewingError(ErrorCode.usage, "invalid_argument", `${err.message.replace(/^error: /, "")} (see dfget --help)`);
    }
    throw err;
  }
  const options = command.opts<Record<string, unknown>>();
  // Only what was typed: an absent flag leaves the key to the config file, the environment and the default.
  const flags: CommandLine["flags"] = {};
  for (const key of Object.keys(configSchema) as Array<keyof typeof configSchema>) if (command.getOptionValueSource(key) === "cli") flags[key] = options[key];
  const recursive = options["recursive"] === true;
  const directoryOnly = DIRECTORY_ONLY_FLAGS.filter((key) => flags[key] !== undefined);
  if (!recursive && directoryOnly.length > 0) {
    throw new LacewingError(ErrorCode.usage, "invalid_argument", `${directoryOnly.map(flagOf).join(", ")} only apply with -r (see dfget --help)`);
  }
  return {
    kind: "run",
    commandLine: {
      url: command.args[0] ?? "",
      output: String(options["output"]),
      digest: options["digest"] as string | undefined,
      headers: (options["header"] as string[] | undefined) ?? [],
      json: options["json"] === true,
      recursive,
      configFile: options["config"] as string | undefined,
      flags,
    },
  };
}

export interface ResolveOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * Validates a command line into a request. Everything that can be checked
 * without the daemon is checked here, so bad input never reaches it.
 */
export async function resolveRequest(commandLine: CommandLine, options: ResolveOptions): Promise<DfgetRequest> {
  // An hf:// URL is checked and resolved after this (hub-url.ts): that takes the network.
  if (!isHubUrl(commandLine.url)) checkSourceUrl(commandLine.url);
  const digest = commandLine.digest === undefined ? "" : formatDigest(parseDigest(commandLine.digest));
  const flagHeaders = commandLine.headers.map(parseHeader);
  const config = loadConfig(configSchema, {
    file: commandLine.configFile === undefined ? undefined : resolve(options.cwd, commandLine.configFile),
    env: options.env,
    flags: commandLine.flags,
  });
  const requestHeaders = mergeHeaders([...Object.entries(config.headers).map(([name, value]) => parseHeader(`${name}: ${value}`)), ...flagHeaders]);
  const outputPath = await checkOutput(commandLine.output, options.cwd);
  const objectStorage = isS3Url(commandLine.url) ? await callerS3Access(options.env, config.s3ForcePathStyle) : undefined;
  return {
    socket: resolve(options.cwd, config.socket),
    download: {
      url: commandLine.url,
      tag: config.tag,
      application: config.application,
      filteredQueryParams: config.filter,
      requestHeaders,
      digest,
      disableBackToSource: config.disableBackToSource,
      pieceLength: BigInt(config.pieceLength),
      outputPath,
      timeoutMs: BigInt(Math.ceil(config.timeout)),
      ...(objectStorage === undefined ? {} : { objectStorage }),
    },
    timeoutMs: config.timeout,
    reconnectTimeoutMs: config.reconnectTimeout,
    json: commandLine.json,
    progress: config.progress,
    logLevel: config.logLevel,
  };
}

/**
 * The caller's S3 access (AWS_* variables, else AWS_PROFILE and the shared
 * files), sent to the local daemon with the download. The sources package
 * (and the AWS SDK behind it) is loaded only here, so an http download
 * starts no slower for it.
 */
async function callerS3Access(env: NodeJS.ProcessEnv, forcePathStyle: boolean): Promise<NonNullable<DfgetRequest["download"]["objectStorage"]>> {
  const { resolveS3Access } = await import("@lacewing/sources");
  return resolveS3Access(env, forcePathStyle ? { forcePathStyle: true } : {});
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses `Name: value`. Messages never echo the value: headers often carry
 * credentials, and error lines end up in CI logs.
 */
export function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(":");
  if (colon < 0) throw badHeader("invalid header: expected 'Name: value' (missing ':')");
  const name = text.slice(0, colon).trim();
  const value = text.slice(colon + 1).trim();
  if (!TOKEN.test(name)) throw badHeader(`invalid header name ${JSON.stringify(name)}: expected 'Name: value'`);
  if (/[\r\n\0]/.test(value)) throw badHeader(`invalid value for header ${name}: it contains a line break or NUL`);
  return [name, value];
}

function badHeader(message: string): LacewingError {
  return new LacewingError(ErrorCode.badHeader, "invalid_argument", message);
}

/** Later headers replace earlier ones with the same name in any case, as HTTP names are case-insensitive. */
function mergeHeaders(headers: ReadonlyArray<[string, string]>): Record<string, string> {
  const byLowerName = new Map<string, [string, string]>();
  for (const header of headers) byLowerName.set(header[0].toLowerCase(), header);
  return Object.fromEntries(byLowerName.values());
}

/**
 * Resolves the output to an absolute path and checks that it can be created:
 * the daemon writes it (atomically, by rename), but a mistake here should
 * fail before any byte is fetched.
 */
export async function checkOutput(output: string, cwd: string): Promise<string> {
  if (output.trim() === "") throw outputError("output path is empty");
  const path = resolve(cwd, output);
  if (/[/\\]$/.test(output)) throw outputError(`output ${path} names a directory; give a file path`);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw outputError(`output ${path} is a directory; give a file path`);
  const dir = dirname(path);
  const dirStat = await stat(dir).catch((err: NodeJS.ErrnoException) => err);
  if (dirStat instanceof Error) {
    throw outputError(dirStat.code === "ENOENT" ? `directory ${dir} does not exist` : `cannot use directory ${dir} (${dirStat.code ?? dirStat.message})`);
  }
  if (!dirStat.isDirectory()) throw outputError(`${dir} is not a directory`);
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    throw outputError(`cannot write to directory ${dir} (${(err as NodeJS.ErrnoException).code ?? "not writable"})`);
  }
  return path;
}

function outputError(message: string): LacewingError {
  return new LacewingError(ErrorCode.output, "permission_denied", message);
}

/** A validated `dfget -r`: the settings every file's download shares, and what only a directory run has. */
export interface DirectoryRequest {
  rootUrl: string;
  /** Absolute path of the output directory; created after the listing if missing. */
  outputDir: string;
  socket: string;
  include: string[];
  exclude: string[];
  maxConcurrent: number;
  json: boolean;
  progress: boolean;
  logLevel: LogLevel;
  /** s3:// listings: path-style addressing (--s3-force-path-style). */
  s3ForcePathStyle: boolean;
}

/**
 * Validates a `-r` command line. Each file is later resolved with
 * resolveRequest (its own URL and output), so it gets exactly what a
 * single-file download gets; here are the checks that can fail before
 * listing: the settings, the headers, and an output that is not a
 * directory. `--digest` names one file's content, so it is refused.
 */
export async function resolveDirectoryRequest(commandLine: CommandLine, options: ResolveOptions): Promise<DirectoryRequest> {
  if (commandLine.digest !== undefined) {
    throw new LacewingError(ErrorCode.usage, "invalid_argument", "--digest names one file's content and cannot be used with -r (see dfget --help)");
  }
  commandLine.headers.forEach(parseHeader);
  const config = loadConfig(configSchema, {
    file: commandLine.configFile === undefined ? undefined : resolve(options.cwd, commandLine.configFile),
    env: options.env,
    flags: commandLine.flags,
  });
  Object.entries(config.headers).forEach(([name, value]) => parseHeader(`${name}: ${value}`));
  if (commandLine.output.trim() === "") throw outputError("output directory is empty");
  const outputDir = resolve(options.cwd, commandLine.output);
  const existing = await stat(outputDir).catch((err: NodeJS.ErrnoException) => err);
  if (!(existing instanceof Error)) {
    if (!existing.isDirectory()) throw outputError(`output ${outputDir} is not a directory; with -r, -O names the directory to download into`);
    try {
      await access(outputDir, constants.W_OK);
    } catch (err) {
      throw outputError(`cannot write to directory ${outputDir} (${(err as NodeJS.ErrnoException).code ?? "not writable"})`);
    }
  } else if (existing.code !== "ENOENT") {
    throw outputError(`cannot use directory ${outputDir} (${existing.code ?? existing.message})`);
  }
  return {
    rootUrl: commandLine.url,
    outputDir,
    socket: resolve(options.cwd, config.socket),
    include: config.include,
    exclude: config.exclude,
    maxConcurrent: config.maxConcurrent,
    json: commandLine.json,
    progress: config.progress,
    logLevel: config.logLevel,

    s3ForcePathStyle: config.s3ForcePathStyle,
  };
}
