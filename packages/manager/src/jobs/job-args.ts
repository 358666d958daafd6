import { LacewingError, REDACTED, parseUrl, redactUrl } from "@lacewing/common";
import { JOB_STATES, JOB_TYPES, PREHEAT_SCOPES, type JobSecrets, type JobState, type JobType, type PreheatArgs, type PreheatScope } from "./job.js";

/** A request the caller must fix; `field` names the offending input. */
export function invalidField(field: string, message: string): LacewingError {
  return new LacewingError("LW_ERR_MANAGER_INVALID_ARGUMENT", "invalid_argument", `${field}: ${message}`, { details: { field } });
}

export interface CreateJobInput {
  type: JobType;
  args: PreheatArgs;
}

/** Checks a create-job body (REST JSON or the gRPC message as a plain object). */
export function parseCreateJob(body: unknown): CreateJobInput {
  const input = asObject(body, "body");
  rejectUnknown(input, JOB_FIELDS, "");
  const type = input["type"];
  if (typeof type !== "string" || !(JOB_TYPES as readonly string[]).includes(type)) throw invalidField("type", `must be one of ${JOB_TYPES.join(", ")}`);
  const raw = asObject(input["args"] ?? {}, "args");
  // A misspelt key ("scopes") would otherwise fall back to a default silently.
  rejectUnknown(raw, ARGS_FIELDS, "args.");

  const argsType = raw["type"];
  if (argsType !== "image" && argsType !== "file") throw invalidField("args.type", "must be image or file");
  const url = optionalString(raw, "url");
  const urls = raw["urls"] === undefined ? [] : stringList(raw["urls"], "args.urls");
  const all = [...(url === "" ? [] : [url]), ...urls];
  if (all.length === 0) throw invalidField("args.url", "a url (or urls) is required");
  if (argsType === "image" && all.length !== 1) throw invalidField("args.urls", "an image preheat takes exactly one manifest url");
  all.forEach((u, i) => {
    const fieldName = url !== "" && i === 0 ? "args.url" : "args.urls";
    try {
      parseUrl(u);
    } catch (err) {
      // parseUrl's message quotes the URL, and a URL may hold credentials.
      throw invalidField(fieldName, /^unsupported URL scheme/.test((err as Error).message) ? (err as Error).message : "not a valid URL");
    }
    if (argsType === "image" && !MANIFEST_PATH.test(new URL(u).pathname))
      throw invalidField(fieldName, "must be a manifest URL like https://registry/v2/<name>/manifests/<tag|digest>");
    // fetch refuses such a URL with a message that quotes it, credentials and all; the registry flow takes them apart.
    if (argsType === "image" && (new URL(u).username !== "" || new URL(u).password !== ""))
      throw invalidField(fieldName, "must not carry credentials: give them as args.username and args.password");
  });
  const platform = optionalString(raw, "platform") || "linux/amd64";
  if (!/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/i.test(platform)) throw invalidField("args.platform", "must look like os/arch or os/arch/variant");
  const scope = optionalString(raw, "scope") || "single_seed_peer";
  if (!(PREHEAT_SCOPES as readonly string[]).includes(scope)) throw invalidField("args.scope", `must be one of ${PREHEAT_SCOPES.join(", ")}`);
  const headers = raw["headers"] === undefined ? {} : stringMap(raw["headers"], "args.headers");
  const filteredQueryParams = raw["filteredQueryParams"] === undefined ? [] : stringList(raw["filteredQueryParams"], "args.filteredQueryParams");

  return {
    type: type as JobType,
    args: {
      type: argsType,
      urls: all,
      tag: optionalString(raw, "tag"),
      application: optionalString(raw, "application"),
      filteredQueryParams,
      headers,
      username: optionalString(raw, "username"),
      password: optionalString(raw, "password"),
      platform,
      scope: scope as PreheatScope,
    },
  };
}

const JOB_FIELDS = new Set(["type", "args"]);
const ARGS_FIELDS = new Set(["type", "url", "urls", "tag", "application", "filteredQueryParams", "headers", "username", "password", "platform", "scope"]);

function rejectUnknown(object: Record<string, unknown>, known: ReadonlySet<string>, prefix: string): void {
  for (const key of Object.keys(object)) if (!known.has(key)) throw invalidField(`${prefix}${key}`, "unknown field");
}

export const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/;

/**
 * Splits args into what may be stored and shown and the credentials that may
 * not. Every header value counts as a credential: which ones are (a
 * `X-Api-Key`, a `Private-Token`, a signed cookie by another name) is the
 * origin's business, and the names alone say what the job sends.
 */
export function splitSecrets(args: PreheatArgs): { args: PreheatArgs; secrets: JobSecrets } {
  return { args: redactArgs(args), secrets: { password: args.password, headers: { ...args.headers }, urls: [...args.urls] } };
}

/**
 * Args as the API and the logs show them: password and header values read
 * "[redacted]", URLs lose their userinfo and signed query values. Redacting
 * redacted args changes nothing, so views redact again and rows stored before
 * a rule existed are covered too.
 */
export function redactArgs(args: PreheatArgs): PreheatArgs {
  return {
    ...args,
    urls: args.urls.map((url) => redactUrl(url, { filteredQueryParams: args.filteredQueryParams })),
    headers: Object.fromEntries(Object.keys(args.headers).map((name) => [name, REDACTED])),
    password: args.password === "" ? "" : REDACTED,
  };
}

/** The args a job runs with: stored args plus the stored credentials. */
export function withSecrets(args: PreheatArgs, secrets: JobSecrets): PreheatArgs {
  return {
    ...args,
    urls: secrets.urls ?? args.urls,
    password: secrets.password ?? args.password,
    headers: { ...args.headers, ...secrets.headers },
  };
}

/** Job ids are UUIDs (lower case, as randomUUID makes them); anything else is a caller's mistake, not a missing job. */
export function parseJobId(id: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw invalidField("id", "must be a job id (a UUID)");
  return id.toLowerCase();
}

export interface ListJobsQuery {
  state: JobState | undefined;
  type: JobType | undefined;
  page: number;
  perPage: number;
}

export const DEFAULT_PER_PAGE = 20;
export const MAX_PER_PAGE = 100;

/** Checks list filters; values arrive as strings (REST) or numbers (gRPC). */
export function parseListJobs(query: { state?: string; type?: string; page?: string | number; perPage?: string | number }): ListJobsQuery {
  const state = query.state === undefined || query.state === "" ? undefined : query.state;
  if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) throw invalidField("state", `must be one of ${JOB_STATES.join(", ")}`);
  const type = query.type === undefined || query.type === "" ? undefined : query.type;
  if (type !== undefined && !(JOB_TYPES as readonly string[]).includes(type)) throw invalidField("type", `must be one of ${JOB_TYPES.join(", ")}`);
  const page = positiveInt(query.page, "page", 1);
  const perPage = positiveInt(query.perPage, "perPage", DEFAULT_PER_PAGE);
  if (perPage > MAX_PER_PAGE) throw invalidField("perPage", `must be at most ${MAX_PER_PAGE}`);
  return { state: state as JobState | undefined, type: type as JobType | undefined, page, perPage };
}

function positiveInt(raw: string | number | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw === "" || raw === 0) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw invalidField(name, "must be a positive integer");
  return value;
}

function asObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidField(name, "must be an object");
  return value as Record<string, unknown>;
}

function optionalString(raw: Record<string, unknown>, key: string): string {
  const value = raw[key];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw invalidField(`args.${key}`, "must be a string");
  return value;
}

function stringList(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw invalidField(name, "must be a list of strings");
  return value as string[];
}

function stringMap(value: unknown, name: string): Record<string, string> {
  const map = asObject(value, name);
  for (const v of Object.values(map)) if (typeof v !== "string") throw invalidField(name, "values must be strings");
  return map as Record<string, string>;
}
