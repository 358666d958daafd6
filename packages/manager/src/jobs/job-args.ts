import { REDACTED, checkSourceUrl, isS3Url, parseUrl, redactUrl } from "@lacewing/common";
import { isHfUrl, parseHfUrl } from "@lacewing/sources";
import { invalidField } from "../schema/validate.js";
import type { CreateJobBody } from "../schema/api-schemas.js";
import type { JobSecrets, JobType, PreheatArgs } from "./job.js";

export interface CreateJobInput {
  type: JobType;
  args: PreheatArgs;
}

/**
 * A create-job request the schema (CreateJobBody) accepted, as the args a job
 * runs with. Only what a JSON schema cannot say is checked here: url or
 * urls, one manifest URL for an image, URLs that parse and that an image's
 * registry flow can use.
 */
export function createJobInputOf(body: CreateJobBody): CreateJobInput {
  const raw = body.args;
  const url = raw.url ?? "";
  const all = [...(url === "" ? [] : [url]), ...(raw.urls ?? [])];
  if (all.length === 0) throw invalidField("args.url", "a url (or urls) is required");
  if (raw.type === "image" && all.length !== 1) throw invalidField("args.urls", "an image preheat takes exactly one manifest url");
  all.forEach((u, i) => {
    const fieldName = url !== "" && i === 0 ? "args.url" : "args.urls";
    if (isHfUrl(u)) {
      if (raw.type === "image") throw invalidField(fieldName, "an image preheat takes a registry manifest URL, not an hf:// URL");
      try {
        parseHfUrl(u);
      } catch (err) {
        // An hf:// URL holds no credentials (the token is a header or the manager's HF_TOKEN), so its message may quote it.
        throw invalidField(fieldName, (err as Error).message);
      }
      return;
    }
    try {
      // A file may live in object storage; an image's manifest is always behind a registry's http(s).
      if (raw.type === "file") checkSourceUrl(u);
      else parseUrl(u);
    } catch (err) {
      // parseUrl's message quotes the URL, and a URL may hold credentials.
      // An s3:// URL names an object and holds no secret: its own message says what is wrong.
      throw invalidField(fieldName, /^unsupported URL scheme/.test((err as Error).message) || isS3Url(u) ? (err as Error).message : "not a valid URL");
    }
    if (raw.type === "image" && !MANIFEST_PATH.test(new URL(u).pathname))
      throw invalidField(fieldName, "must be a manifest URL like https://registry/v2/<name>/manifests/<tag|digest>");
    // fetch refuses such a URL with a message that quotes it, credentials and all; the registry flow takes them apart.
    if (raw.type === "image" && (new URL(u).username !== "" || new URL(u).password !== ""))
      throw invalidField(fieldName, "must not carry credentials: give them as args.username and args.password");
  });
  // The schema filled in every default; these fallbacks only satisfy the optional types.
  return {
    type: body.type,
    args: {
      type: raw.type,
      urls: all,
      tag: raw.tag ?? "",
      application: raw.application ?? "",
      filteredQueryParams: raw.filteredQueryParams ?? [],
      headers: raw.headers ?? {},
      username: raw.username ?? "",
      password: raw.password ?? "",
      platform: raw.platform ?? "linux/amd64",
      scope: raw.scope ?? "single_seed_peer",
    },
  };
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
    urls: args.urls.map((url) => (isPlainHfUrl(url) ? url : redactUrl(url, { filteredQueryParams: args.filteredQueryParams }))),
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

/** Job ids are matched in the form they are made in (lower case, as randomUUID makes them); the schema checked the shape. */
export function normalJobId(id: string): string {
  return id.toLowerCase();
}

/** An hf:// URL that parses names a repository and a path, nothing secret, so views show it as it is; anything else under that scheme reads "[redacted]". */
function isPlainHfUrl(url: string): boolean {
  if (!isHfUrl(url)) return false;
  try {
    parseHfUrl(url);
    return true;
  } catch {
    return false;
  }
}
