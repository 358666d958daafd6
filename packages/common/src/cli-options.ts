import { Option, type Command } from "commander";
import { flagOf, type Field, type FieldKind, type Schema } from "./config.js";
import { formatDuration, formatSize } from "./units.js";

/** A command-line option derived from a schema field: kebab-cased key, description, default shown. */
export interface CliOption {
  key: string;
  /** Commander flags: `--data-dir <dir>`, `--seed` for a boolean that defaults to false, `--no-progress` for a negatable one. */
  flags: string;
  description: string;
  /** Repeatable (a list): each use adds to the values. */
  repeatable: boolean;
}

const PLACEHOLDERS: Record<FieldKind, string> = {
  string: "<value>",
  number: "<n>",
  port: "<port>",
  boolean: "<true|false>",
  duration: "<duration>",
  bytes: "<size>",
  list: "<a,b,...>",
  enum: "<value>",
  map: "<value>",
};

/**
 * The command-line options of a schema, one per key (map fields are YAML
 * only), so a setting is declared once and its flag, environment variable
 * and YAML key follow. `except` leaves out keys a command handles itself.
 */
export function cliOptionsOf<S extends Schema>(schema: S, except: ReadonlyArray<keyof S & string> = []): CliOption[] {
  return Object.entries(schema)
    .filter(([key, spec]) => spec.kind !== "map" && !except.includes(key))
    .map(([key, spec]) => {
      const flag = flagOf(key);
      const presence = spec.kind === "boolean" && spec.default === false;
      const negated = spec.kind === "boolean" && spec.negatable;
      const placeholder = spec.placeholder ?? (spec.kind === "enum" ? `<${(spec.values ?? []).join("|")}>` : PLACEHOLDERS[spec.kind]);
      const flags = negated ? `--no-${flag.slice(2)}` : presence ? flag : `${flag} ${placeholder}`;
      const notes = [
        ...(spec.default === undefined || spec.default === "" || presence || negated || (Array.isArray(spec.default) && spec.default.length === 0)
          ? []
          : [`default ${formatDefault(spec)}`]),
        ...(spec.env === undefined ? [] : [`env ${spec.env}`]),
      ];
      return { key, flags, description: notes.length === 0 ? spec.description : `${spec.description} (${notes.join("; ")})`, repeatable: spec.kind === "list" };
    });
}

/** A default as a user would type it: 10s, not 10000; 64MiB, not 67108864. */
function formatDefault(spec: Field<unknown>): string {
  const value = spec.default;
  if (spec.kind === "duration" && typeof value === "number") return formatDuration(value);
  if (spec.kind === "bytes" && typeof value === "number") return formatSize(value);
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

/**
 * Adds every option of `schema` (but `except`) to `command`. Commander sets
 * no defaults: an absent flag stays undefined, so YAML, environment and the
 * schema's default apply (loadConfig), and --help shows the schema's default.
 */
export function addSchemaOptions<S extends Schema>(command: Command, schema: S, except: ReadonlyArray<keyof S & string> = []): Command {
  for (const option of cliOptionsOf(schema, except)) {
    const added = new Option(option.flags, option.description);
    if (option.repeatable) added.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    command.addOption(added);
  }
  return command;
}
