import { ErrorCode } from "./error-codes.js";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import { LacewingError } from "./errors.js";
import { MAX_TIMER_MS, parseBytes, parseDuration } from "./units.js";

/**
 * YAML is parsed only when a config file is given, so a process started
 * without one (every dfget) does not load the parser.
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)("yaml") as typeof Yaml;
  return yaml.parse(text);
}

/** What a field holds; decides how its flag reads and shows its default. */
export type FieldKind = "string" | "number" | "port" | "boolean" | "duration" | "bytes" | "list" | "enum" | "map";

/** One config key: how to read it from any source, and its default. */
export interface Field<T> {
  readonly kind: FieldKind;
  readonly description: string;
  readonly default: T | undefined;
  readonly required: boolean;
  /** Environment variable that sets it, if any. */
  readonly env: string | undefined;
  /** How its flag names the value in --help (`--listen <host:port>`); by kind when unset. */
  readonly placeholder: string | undefined;
  /** A boolean that defaults to true and is turned off with `--no-<key>` (dfget's `--no-progress`) instead of taking a value. */
  readonly negatable: boolean;
  /** The allowed values of an enum field. */
  readonly values: readonly string[] | undefined;
  /**
   * Turns a raw value (flag string, env string, YAML value) into T, or explains why not.
   * Build fields with `field.*`: loadConfig only trusts the failures they return.
   */
  parse(raw: unknown): T | { error: string };
}

export type Schema = Record<string, Field<unknown>>;
export type ConfigOf<S extends Schema> = { [K in keyof S]: S[K] extends Field<infer T> ? T : never };

interface FieldOptions<T> {
  description: string;
  default?: T;
  required?: boolean;
  env?: string;
  placeholder?: string;
  negatable?: boolean;
  /** Extra check on the parsed value; returns an error message or undefined. */
  check?: (value: T) => string | undefined;
}

// Brands the failures of `field.*` parsers: a value can have the same shape
// (a map field holding the single key "error" must not read as a failure).
const PARSE_FAILURE = Symbol("lacewing.config.parseFailure");

function failure(error: string): { error: string } {
  return { error, [PARSE_FAILURE]: true } as { error: string };
}

function makeField<T>(kind: FieldKind, options: FieldOptions<T>, parse: (raw: unknown) => T | { error: string }, values?: readonly string[]): Field<T> {
  return {
    kind,
    description: options.description,
    default: options.default,
    required: options.required ?? false,
    env: options.env,
    placeholder: options.placeholder,
    negatable: options.negatable ?? false,
    values,
    parse(raw) {
      const value = parse(raw);
      if (isError(value)) return value;
      const problem = options.check?.(value);
      return problem === undefined ? value : failure(problem);
    },
  };
}

function isError(value: unknown): value is { error: string } {
  return typeof value === "object" && value !== null && PARSE_FAILURE in value;
}

/** Field constructors; every process builds its schema from these. */
export const field = {
  string: (options: FieldOptions<string>) =>
    makeField("string", options, (raw) => (typeof raw === "string" || typeof raw === "number" ? String(raw) : failure("expected a string"))),
  number: (options: FieldOptions<number>) =>
    makeField("number", options, (raw) => {
      const value = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
      return Number.isFinite(value) ? value : failure(`expected a number, got ${JSON.stringify(raw)}`);
    }),
  port: (options: FieldOptions<number>) =>
    makeField("port", options, (raw) => {
      const value = typeof raw === "number" ? raw : typeof raw === "string" ? Number(raw) : NaN;
      return Number.isInteger(value) && value >= 0 && value <= 65535 ? value : failure(`expected a port 0-65535, got ${JSON.stringify(raw)}`);
    }),
  boolean: (options: FieldOptions<boolean>) =>
    makeField("boolean", options, (raw) => {
      if (typeof raw === "boolean") return raw;
      if (raw === "true" || raw === "1" || raw === "yes") return true;
      if (raw === "false" || raw === "0" || raw === "no") return false;
      return failure(`expected true or false, got ${JSON.stringify(raw)}`);
    }),
  /**
   * Milliseconds, from "30s", "5m", "1h" or a number of milliseconds. At most
   * `max`, by default MAX_TIMER_MS: a duration usually ends up in a timer,
   * and a longer timer fires at once. A field that is never a timer (an age
   * compared with timestamps) may set a larger `max`, saying why.
   */
  duration: (options: FieldOptions<number> & { max?: number }) =>
    makeField("duration", options, (raw) => {
      const value = typeof raw === "string" || typeof raw === "number" ? parseDuration(raw) : undefined;
      if (value === undefined) return failure(`expected a duration like 30s, 5m or 1h, got ${JSON.stringify(raw)}`);
      const max = options.max ?? MAX_TIMER_MS;
      if (value > max)
        return failure(
          `must be at most ${max === MAX_TIMER_MS ? `${MAX_TIMER_MS}ms (about 24.8 days, the longest timer Node.js can set)` : `${max}ms`}, got ${JSON.stringify(raw)}`,
        );
      return value;
    }),
  /** Bytes, from "64MiB", "10GB" or a number. */
  bytes: (options: FieldOptions<number>) =>
    makeField("bytes", options, (raw) => {
      const value = typeof raw === "string" || typeof raw === "number" ? parseBytes(raw) : undefined;
      return value ?? failure(`expected a size like 512MiB or 10GB, got ${JSON.stringify(raw)}`);
    }),
  /** A list, from a YAML sequence, a comma-separated string, or a repeated flag (each value comma-separated too). */
  list: (options: FieldOptions<string[]>) =>
    makeField("list", options, (raw) => {
      const items = Array.isArray(raw) ? raw.map(String) : typeof raw === "string" ? [raw] : undefined;
      if (items === undefined) return failure("expected a list");
      return items
        .flatMap((item) => item.split(","))
        .map((s) => s.trim())
        .filter((s) => s !== "");
    }),
  enum: <const V extends string>(values: readonly V[], options: FieldOptions<V>) =>
    makeField(
      "enum",
      options,
      (raw) =>
        typeof raw === "string" && (values as readonly string[]).includes(raw)
          ? (raw as V)
          : failure(`expected one of ${values.join(", ")}, got ${JSON.stringify(raw)}`),
      values,
    ),
  /** A string-to-string map from YAML only (e.g. headers). */
  map: (options: FieldOptions<Record<string, string>>) =>
    makeField("map", options, (raw) => {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return failure("expected a mapping");
      return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
    }),
};

/** The flag of a schema key: `dataDir` is `--data-dir`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export interface ConfigSources {
  /** Path of a YAML file whose top-level keys are the schema's keys. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Parsed command-line flags, keyed like the schema (camelCase). Undefined values are ignored. */
  flags?: Record<string, unknown>;
}

/**
 * Builds a process's config: defaults, then the YAML file, then environment,
 * then flags. A bad flag fails with LW_ERR_USAGE naming the flag; any other
 * bad or missing value with LW_ERR_CONFIG naming the key and where it came
 * from.
 */
export function loadConfig<S extends Schema>(schema: S, sources: ConfigSources = {}): ConfigOf<S> {
  const fromFile = sources.file === undefined ? {} : readYamlConfig(sources.file);
  for (const key of Object.keys(fromFile)) {
    if (!(key in schema)) throw configError(key, `unknown key in ${sources.file}`);
  }
  const env = sources.env ?? {};
  const result: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const candidates: Array<[string, unknown]> = [
      ["flag", sources.flags?.[key]],
      [`environment ${spec.env ?? ""}`, spec.env === undefined ? undefined : env[spec.env]],
      ["config file", fromFile[key]],
    ];
    const found = candidates.find(([, value]) => value !== undefined && value !== "");
    if (found === undefined) {
      if (spec.default === undefined && spec.required)
        throw configError(key, `is required: set it in the config file, ${spec.env === undefined ? "" : `environment ${spec.env} `}or a flag`);
      result[key] = spec.default;
      continue;
    }
    const [origin, raw] = found;
    const parsed = spec.parse(raw);
    if (isError(parsed))
      throw origin === "flag"
        ? new LacewingError(ErrorCode.usage, "invalid_argument", `invalid ${flagOf(key)}: ${parsed.error}`, { details: { key } })
        : configError(key, `${parsed.error} (from ${origin})`);
    result[key] = parsed;
  }
  return result as ConfigOf<S>;
}

function readYamlConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new LacewingError(ErrorCode.config, "invalid_argument", `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
    });
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new LacewingError(ErrorCode.config, "invalid_argument", `config file ${path} is not valid YAML: ${(err as Error).message.split("\n")[0]}`, {
      cause: err,
    });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data))
    throw new LacewingError(ErrorCode.config, "invalid_argument", `config file ${path} must be a mapping of keys to values`);
  return data as Record<string, unknown>;
}

function configError(key: string, problem: string): LacewingError {
  return new LacewingError(ErrorCode.config, "invalid_argument", `invalid config: ${key} ${problem}`, { details: { key } });
}
