import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ErrorCode, LacewingError, errorMessage } from "@lacewing/common";
import type { HfRepoType, HfUrl } from "./hf-url.js";

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

/** How long one hub call (headers and body) may take by default. */
const HUB_REQUEST_TIMEOUT_MS = 30_000;

/** Where a hub call goes and with which credentials. */
export interface HubOptions {
  /** HF_TOKEN, HUGGING_FACE_HUB_TOKEN and HF_ENDPOINT are read from here; the process's environment by default. */
  env?: NodeJS.ProcessEnv;
  /** An explicit `Authorization` header value; wins over the token variables. */
  authorization?: string;
  signal?: AbortSignal;
  /** How long one hub call (headers and body) may take; 30 s by default. */
  timeoutMs?: number;
  /**
   * Also read the token file `huggingface-cli login` writes (HF_TOKEN_PATH, or
   * `token` under HF_HOME, default ~/.cache/huggingface) when no variable
   * names a token: right for a user's CLI, not for a server.
   */
  tokenFile?: boolean;
}

/** The hub a call talks to: its endpoint (no trailing "/") and the Authorization to send, if any. */
export interface Hub {
  endpoint: string;
  authorization: string | undefined;
  timeoutMs: number;
}

/**
 * The endpoint and credentials, as huggingface_hub reads them: `HF_ENDPOINT`
 * (default https://huggingface.co), then `HF_TOKEN`, the legacy
 * `HUGGING_FACE_HUB_TOKEN` only when HF_TOKEN is unset or empty, and (when
 * asked) the login token file.
 */
export function hubOf(options: HubOptions = {}): Hub {
  const env = options.env ?? process.env;
  const raw = nonEmpty(env["HF_ENDPOINT"]) ?? DEFAULT_HF_ENDPOINT;
  let endpoint: URL;
  try {
    endpoint = new URL(raw);
  } catch {
    throw new LacewingError(ErrorCode.config, "invalid_argument", "HF_ENDPOINT (environment) is not a URL");
  }
  if (endpoint.protocol !== "https:" && endpoint.protocol !== "http:")
    throw new LacewingError(ErrorCode.config, "invalid_argument", "HF_ENDPOINT (environment) must be an http or https URL");
  if (endpoint.username !== "" || endpoint.password !== "" || endpoint.search !== "")
    throw new LacewingError(ErrorCode.config, "invalid_argument", "HF_ENDPOINT (environment) must not carry credentials or a query string");
  const token = nonEmpty(env["HF_TOKEN"]) ?? nonEmpty(env["HUGGING_FACE_HUB_TOKEN"]) ?? (options.tokenFile === true ? tokenFromFile(env) : undefined);
  const authorization = nonEmpty(options.authorization) ?? (token === undefined ? undefined : `Bearer ${token}`);
  return { endpoint: endpoint.toString().replace(/\/+$/, ""), authorization, timeoutMs: options.timeoutMs ?? HUB_REQUEST_TIMEOUT_MS };
}

/** The token `huggingface-cli login` stored, where huggingface_hub looks for it; undefined when there is none. */
function tokenFromFile(env: NodeJS.ProcessEnv): string | undefined {
  const home = nonEmpty(env["HF_HOME"]) ?? join(nonEmpty(env["XDG_CACHE_HOME"]) ?? join(nonEmpty(env["HOME"]) ?? homedir(), ".cache"), "huggingface");
  const path = nonEmpty(env["HF_TOKEN_PATH"]) ?? join(home, "token");
  try {
    return nonEmpty(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/** `models`, `datasets`, `spaces`: the API's word for a repository type. */
export function apiTypeOf(type: HfRepoType): string {
  return `${type}s`;
}

/** `datasets/`, `spaces/` or "" for models: the prefix of file URLs. */
function urlPrefixOf(type: HfRepoType): string {
  return type === "model" ? "" : `${type}s/`;
}

export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** `{endpoint}/[datasets/|spaces/]<repo>/resolve/<revision>/<path>`: the file's bytes (the Hub redirects LFS files to its storage). */
export function resolveUrlOf(hub: Hub, url: HfUrl, revision: string): string {
  return `${hub.endpoint}/${urlPrefixOf(url.repoType)}${url.repoId}/resolve/${encodeURIComponent(revision)}/${encodePath(url.path)}`;
}

/** What a failed call was about, for the error message. */
export interface HubCallSubject {
  url: HfUrl;
  revision: string;
}

/**
 * One request to the hub. Redirects are not followed (`redirect: "manual"`):
 * the caller decides, so the token never leaves the hub's origin. A failure
 * becomes one LacewingError with a hub code; the token is never in it.
 */
export async function hubRequest(
  hub: Hub,
  url: string,
  init: { method: "GET" | "HEAD"; signal?: AbortSignal | undefined; subject: HubCallSubject },
): Promise<Response> {
  let response: Response;
  // A hub that stops answering must not hang dfget or a preheat: each call has its own deadline, as the daemon's origin requests do.
  const deadline = AbortSignal.timeout(hub.timeoutMs);
  const signal = init.signal === undefined ? deadline : AbortSignal.any([init.signal, deadline]);
  try {
    response = await fetch(url, {
      method: init.method,
      redirect: "manual",
      headers: {
        ...(hub.authorization === undefined ? {} : { authorization: hub.authorization }),
        // A HEAD must report the real length, not a compressed one.
        "accept-encoding": "identity",
        "user-agent": "lacewing",
      },
      signal,
    });
  } catch (err) {
    if (init.signal?.aborted === true) throw new LacewingError(ErrorCode.cancelled, "cancelled", "cancelled while asking the hub", { cause: err });
    if (deadline.aborted)
      throw new LacewingError(ErrorCode.hubUnavailable, "unavailable", `the hub at ${hub.endpoint} did not answer within ${hub.timeoutMs / 1000} s`, {
        cause: err,
        details: { retryable: true },
      });
    const cause = (err as { cause?: unknown }).cause;
    throw new LacewingError(ErrorCode.hubUnavailable, "unavailable", `cannot reach the hub at ${hub.endpoint}: ${errorMessage(cause ?? err)}`, { cause: err });
  }
  if (response.status >= 400) {
    await response.body?.cancel();
    throw hubErrorOf(response, hub, init.subject);
  }
  return response;
}

/** The Hub says what went wrong in `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo); huggingface_hub reads it the same way. */
function hubErrorOf(response: Response, hub: Hub, subject: HubCallSubject): LacewingError {
  const code = response.headers.get("x-error-code") ?? "";
  const repo = `${subject.url.repoType} ${subject.url.repoId}`;
  const details = { status: response.status, hubErrorCode: code };
  const tokenHint = hub.authorization === undefined ? " (a private or gated repository needs HF_TOKEN)" : " (or the token cannot read it)";
  if (code === "RepoNotFound")
    return new LacewingError(ErrorCode.hubRepoNotFound, "not_found", `${repo} not found on ${hub.endpoint}${tokenHint}`, { details });
  if (code === "RevisionNotFound")
    return new LacewingError(ErrorCode.hubRevisionNotFound, "not_found", `revision ${JSON.stringify(subject.revision)} not found in ${repo}`, { details });
  if (code === "EntryNotFound")
    return new LacewingError(ErrorCode.hubEntryNotFound, "not_found", `${JSON.stringify(subject.url.path)} not found in ${repo} at ${subject.revision}`, {
      details,
    });
  if (code === "GatedRepo")
    return new LacewingError(ErrorCode.hubAuth, "permission_denied", `${repo} is gated: accept its conditions on the Hub with the account of HF_TOKEN`, {
      details,
    });
  if (response.status === 401) {
    // huggingface_hub's rule: a 401 is a refused token only when the Hub says so; otherwise it hides a repository.
    const message = response.headers.get("x-error-message") ?? "";
    if (hub.authorization !== undefined && (message === INVALID_CREDENTIALS || message === ""))
      return new LacewingError(ErrorCode.hubAuth, "unauthenticated", `${hub.endpoint} refused the token for ${repo} (HF_TOKEN)`, { details });
    if (hub.authorization === undefined && message === INVALID_CREDENTIALS)
      return new LacewingError(ErrorCode.hubAuth, "unauthenticated", `${hub.endpoint} asks for a token for ${repo}: set HF_TOKEN`, { details });
    return new LacewingError(ErrorCode.hubRepoNotFound, "not_found", `${repo} not found on ${hub.endpoint}${tokenHint}`, { details });
  }
  if (response.status === 403) return new LacewingError(ErrorCode.hubAuth, "permission_denied", `${hub.endpoint} denies access to ${repo}`, { details });
  if (response.status === 404)
    return new LacewingError(ErrorCode.hubEntryNotFound, "not_found", `${hub.endpoint} has nothing at ${repo} ${subject.revision}/${subject.url.path}`, {
      details,
    });
  return new LacewingError(ErrorCode.hubUnavailable, "unavailable", `${hub.endpoint} answered HTTP ${response.status} for ${repo}`, {
    details: { ...details, retryable: response.status >= 500 || response.status === 429 },
  });
}

/** The Hub's X-Error-Message for a token it does not accept. */
const INVALID_CREDENTIALS = "Invalid credentials in Authorization header";

export function malformedAnswer(hub: Hub, what: string): LacewingError {
  return new LacewingError(ErrorCode.hubUnavailable, "unavailable", `${hub.endpoint} sent a malformed ${what}`);
}
