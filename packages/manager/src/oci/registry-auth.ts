import { ErrorCode, LacewingError, headerValue } from "@lacewing/common";

export interface RegistryCredentials {
  username: string;
  password: string;
  /** Extra request headers; an Authorization here is used as given. */
  headers: Record<string, string>;
}

export interface RegistryFetchOptions {
  accept?: string;
  signal?: AbortSignal;
}

/**
 * Talks to one registry the way a docker client does: send the request, and
 * on a 401 with a Bearer challenge fetch a token from the challenge's realm
 * (with basic credentials when given) and retry; on a Basic challenge retry
 * with the credentials. The Authorization that worked is kept for the next
 * requests and for the seed peers that download the blobs.
 */
export class RegistrySession {
  readonly #credentials: RegistryCredentials;
  readonly #now: () => number;
  #authorization: string | undefined;
  /** The Bearer challenge answered last, to fetch a new token when this one ages. */
  #challenge: string | undefined;
  #tokenIssuedAt = 0;
  #tokenExpiresAt = Number.POSITIVE_INFINITY;

  constructor(credentials: RegistryCredentials, options: { now?: () => number } = {}) {
    this.#credentials = credentials;
    this.#now = options.now ?? Date.now;
    this.#authorization = headerValue(credentials.headers, "authorization");
  }

  /** The Authorization header value the registry accepted, if it wanted one. */
  get authorization(): string | undefined {
    return this.#authorization;
  }

  /**
   * The Authorization to hand to a seed peer now. Registry tokens are short
   * lived (Docker Hub's last 5 minutes) and a preheat of a large image
   * triggers its last layers long after it resolved the manifest, so a
   * Bearer token past half its lifetime is replaced by a new one.
   */
  async freshAuthorization(signal?: AbortSignal): Promise<string | undefined> {
    if (this.#challenge === undefined) return this.#authorization;
    const now = this.#now();
    if (now < this.#tokenIssuedAt + (this.#tokenExpiresAt - this.#tokenIssuedAt) / 2) return this.#authorization;
    this.#authorization = await this.#answer(this.#challenge, signal);
    return this.#authorization;
  }

  async fetch(url: string, options: RegistryFetchOptions = {}): Promise<Response> {
    const first = await this.#send(url, options);
    if (first.status !== 401) return first;
    const challenge = first.headers.get("www-authenticate") ?? "";
    await first.body?.cancel();
    const authorization = await this.#answer(challenge, options.signal);
    if (authorization === undefined) return this.#send(url, options); // nothing better to offer; surface the 401 to the caller
    this.#authorization = authorization;
    return this.#send(url, options);
  }

  async #send(url: string, options: RegistryFetchOptions): Promise<Response> {
    const headers = new Headers(this.#credentials.headers);
    if (this.#authorization !== undefined) headers.set("authorization", this.#authorization);
    if (options.accept !== undefined) headers.set("accept", options.accept);
    try {
      return await fetch(url, { headers, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    } catch (err) {
      if (options.signal?.aborted === true) throw err;
      throw new LacewingError(ErrorCode.managerRegistry, "unavailable", `cannot reach ${new URL(url).host}: ${causeOf(err)}`, { cause: err });
    }
  }

  async #answer(challenge: string, signal: AbortSignal | undefined): Promise<string | undefined> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === "basic") return this.#basic();
    if (scheme !== "bearer") return undefined;
    const realm = params.get("realm");
    if (realm === undefined) throw new LacewingError(ErrorCode.managerRegistryAuth, "failed_precondition", "registry sent a Bearer challenge without a realm");
    const tokenUrl = new URL(realm);
    for (const key of ["service", "scope"]) {
      const value = params.get(key);
      if (value !== undefined) tokenUrl.searchParams.append(key, value);
    }
    const headers = new Headers();
    const basic = this.#basic();
    if (basic !== undefined) headers.set("authorization", basic);
    let response: Response;
    try {
      response = await fetch(tokenUrl, { headers, ...(signal === undefined ? {} : { signal }) });
    } catch (err) {
      if (signal?.aborted === true) throw err;
      throw new LacewingError(ErrorCode.managerRegistryAuth, "unavailable", `cannot reach the token service ${tokenUrl.host}: ${causeOf(err)}`, {
        cause: err,
      });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new LacewingError(ErrorCode.managerRegistryAuth, "permission_denied", `token service ${tokenUrl.host} answered ${response.status}`);
    }
    const body = (await response.json()) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof body.token === "string" ? body.token : typeof body.access_token === "string" ? body.access_token : undefined;
    if (token === undefined) throw new LacewingError(ErrorCode.managerRegistryAuth, "failed_precondition", `token service ${tokenUrl.host} returned no token`);
    // The token spec's default lifetime when the service does not say.
    const lifetimeSeconds = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 60;
    this.#challenge = challenge;
    this.#tokenIssuedAt = this.#now();
    this.#tokenExpiresAt = this.#tokenIssuedAt + lifetimeSeconds * 1000;
    return `Bearer ${token}`;
  }

  #basic(): string | undefined {
    if (this.#credentials.username === "") return undefined;
    return `Basic ${Buffer.from(`${this.#credentials.username}:${this.#credentials.password}`).toString("base64")}`;
  }
}

/** Parses `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): { scheme: string; params: Map<string, string> } {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).trim().toLowerCase();
  const params = new Map<string, string>();
  const rest = space < 0 ? "" : header.slice(space + 1);
  for (const match of rest.matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params.set((match[1] ?? "").toLowerCase(), (match[2] ?? match[3] ?? "").replace(/\\(.)/g, "$1"));
  }
  return { scheme, params };
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
