import { ErrorCode, LacewingError } from "@lacewing/common";

/** The Hub's three kinds of repository; the API and the file URLs name them in the plural. */
export type HfRepoType = "model" | "dataset" | "space";

/** An `hf://` URL taken apart. */
export interface HfUrl {
  repoType: HfRepoType;
  /** `owner/name`. */
  repoId: string;
  /** The path inside the repository, "/"-separated, without leading or trailing "/"; "" for the whole repository. */
  path: string;
  /** The revision as written (a branch, a tag, a commit sha, `refs/pr/1`); undefined means `main`. */
  revision: string | undefined;
}

export const DEFAULT_HF_REVISION = "main";

const TYPE_PREFIXES: Record<string, HfRepoType> = { datasets: "dataset", spaces: "space" };
/** The Hub's rule for owner and repository names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const FULL_SHA = /^[0-9a-f]{40}$/;

/** True for a URL this module handles, whether or not it is well formed. */
export function isHfUrl(url: string): boolean {
  return url.toLowerCase().startsWith("hf://");
}

/** True when a revision is a full commit sha, which needs no lookup to pin. */
export function isCommitSha(revision: string): boolean {
  return FULL_SHA.test(revision);
}

/**
 * Parses `hf://[datasets/|spaces/]<owner>/<repo>[/<path>][@<revision>]`.
 * The revision is everything after the last "@" (so `@refs/pr/1` works); a
 * path that holds "@" itself therefore needs an explicit revision. The
 * revision always comes last: HfFileSystem's `<repo>@<revision>/<path>` is
 * not this form (`hf://o/r@v1/x` asks for revision `v1/x`), and a revision
 * may be percent-encoded.
 * Throws LW_ERR_BAD_URL with a message that names what is wrong.
 */
export function parseHfUrl(url: string): HfUrl {
  if (!isHfUrl(url)) throw badHfUrl(url, "it does not start with hf://");
  let rest = url.slice("hf://".length);
  if (/[?#]/.test(rest)) throw badHfUrl(url, "a query string or fragment has no meaning in an hf:// URL");
  let revision: string | undefined;
  const segments = rest.split("/");
  let repoType: HfRepoType = "model";
  const typePrefix = segments[0] === undefined ? undefined : TYPE_PREFIXES[segments[0]];
  if (typePrefix !== undefined) {
    repoType = typePrefix;
    segments.shift();
  }
  const owner = segments[0] ?? "";
  const name = segments[1] ?? "";
  rest = segments.slice(2).join("/");
  if (name.includes("@")) {
    // No path: the revision follows the repository (and may hold slashes, like refs/pr/1).
    revision = decodeRevision(url, [name.slice(name.indexOf("@") + 1), ...segments.slice(2)].join("/"));
    rest = "";
  } else {
    const at = rest.lastIndexOf("@");
    if (at >= 0) {
      revision = decodeRevision(url, rest.slice(at + 1));
      rest = rest.slice(0, at);
    }
  }
  const repoName = name.includes("@") ? name.slice(0, name.indexOf("@")) : name;
  if (owner === "" || repoName === "") throw badHfUrl(url, "expected hf://[datasets/|spaces/]<owner>/<repo>[/<path>][@<revision>]");
  if (!NAME.test(owner) || !NAME.test(repoName) || repoName.endsWith(".git"))
    throw badHfUrl(url, `${JSON.stringify(`${owner}/${repoName}`)} is not a repository id`);
  const path = rest.replace(/^\/+|\/+$/g, "");
  for (const part of path === "" ? [] : path.split("/")) {
    if (part === "" || part === "." || part === "..") throw badHfUrl(url, "the path has an empty, . or .. segment");
  }
  return { repoType, repoId: `${owner}/${repoName}`, path, revision };
}

function decodeRevision(url: string, raw: string): string {
  let revision: string;
  try {
    revision = decodeURIComponent(raw);
  } catch {
    throw badHfUrl(url, "the revision is not valid percent-encoding");
  }
  if (revision === "") throw badHfUrl(url, "the revision after @ is empty");
  if (/[\0-\x20\x7f]/.test(revision)) throw badHfUrl(url, "the revision holds a control character or a space");
  return revision;
}

/** The canonical `hf://` URL, revision last: what listHf hands out for each file. */
export function formatHfUrl(url: HfUrl): string {
  const prefix = url.repoType === "model" ? "" : `${url.repoType}s/`;
  const path = url.path === "" ? "" : `/${url.path}`;
  const revision = url.revision === undefined ? "" : `@${url.revision}`;
  return `hf://${prefix}${url.repoId}${path}${revision}`;
}

function badHfUrl(url: string, why: string): LacewingError {
  // The URL itself is quoted: an hf:// URL carries no credentials (the token comes from the environment).
  return new LacewingError(ErrorCode.badUrl, "invalid_argument", `not a valid hf:// URL ${JSON.stringify(url)}: ${why}`);
}
