import type { ListFiles, ListOptions, RemoteFile } from "../remote-file.js";
import { DEFAULT_HF_REVISION, formatHfUrl, isCommitSha, parseHfUrl, type HfUrl } from "./hf-url.js";
import { apiTypeOf, encodePath, hubOf, hubRequest, malformedAnswer, type Hub, type HubCallSubject } from "./hub.js";

/** The most pages one listing follows: the Hub pages by 1 000 entries, so this is a million files. */
const MAX_PAGES = 1_000;

/**
 * Every file below `hf://[datasets/|spaces/]<owner>/<repo>[/<dir>][@<revision>]`.
 * A revision that is not a full commit sha is pinned first (the revision
 * API's `sha`), so every file of one listing is from one commit; a full sha
 * is used as is. Then the tree listing of that commit, recursively, page by
 * page (the `Link: <…>; rel="next"` header). Each file's `url` is
 * `hf://…/<path>@<sha>`, its `version` the LFS sha256 or the blob id.
 */
export const listHf: ListFiles = (rootUrl: string, options: ListOptions = {}): AsyncIterable<RemoteFile> => listFiles(rootUrl, options);

async function* listFiles(rootUrl: string, options: ListOptions): AsyncGenerator<RemoteFile> {
  const root = parseHfUrl(rootUrl);
  const hub = hubOf(options.env === undefined ? {} : { env: options.env });
  const requested = root.revision ?? DEFAULT_HF_REVISION;
  const sha = isCommitSha(requested) ? requested : await pinRevision(hub, root, requested, options.signal);
  const subject: HubCallSubject = { url: root, revision: sha };
  const base = `${hub.endpoint}/api/${apiTypeOf(root.repoType)}/${root.repoId}/tree/${sha}${root.path === "" ? "" : `/${encodePath(root.path)}`}`;
  let next: string | undefined = `${base}?recursive=true&expand=false`;
  for (let page = 0; next !== undefined; page++) {
    if (page === MAX_PAGES) throw malformedAnswer(hub, `tree listing (more than ${MAX_PAGES} pages)`);
    const response = await hubRequest(hub, next, { method: "GET", signal: options.signal, subject });
    if (response.status !== 200) throw malformedAnswer(hub, `tree listing (HTTP ${response.status})`);
    const entries = await response.json().catch(() => undefined);
    if (!Array.isArray(entries)) throw malformedAnswer(hub, "tree listing");
    for (const entry of entries) {
      const file = remoteFileOf(hub, root, sha, entry);
      if (file !== undefined) yield file;
    }
    next = nextPageOf(hub, response.headers.get("link"));
  }
}

/** The commit a branch or tag points at now, from `GET /api/<type>s/<repo>/revision/<revision>`. */
async function pinRevision(hub: Hub, url: HfUrl, revision: string, signal: AbortSignal | undefined): Promise<string> {
  const api = `${hub.endpoint}/api/${apiTypeOf(url.repoType)}/${url.repoId}/revision/${encodeURIComponent(revision)}`;
  const response = await hubRequest(hub, api, { method: "GET", signal, subject: { url, revision } });
  const info = (await response.json().catch(() => undefined)) as { sha?: unknown } | undefined;
  if (response.status !== 200 || typeof info?.sha !== "string" || !isCommitSha(info.sha)) throw malformedAnswer(hub, "revision info (no sha)");
  return info.sha;
}

interface TreeEntry {
  type?: unknown;
  path?: unknown;
  size?: unknown;
  oid?: unknown;
  lfs?: { oid?: unknown; size?: unknown } | null;
}

function remoteFileOf(hub: Hub, root: HfUrl, sha: string, raw: unknown): RemoteFile | undefined {
  const entry = raw as TreeEntry | null;
  if (entry === null || typeof entry !== "object" || typeof entry.path !== "string") throw malformedAnswer(hub, "tree entry");
  if (entry.type !== "file") return undefined; // directories are listed too, and need nothing
  const lfs = entry.lfs ?? undefined;
  const size = lfs?.size ?? entry.size;
  const version = lfs?.oid ?? entry.oid;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0 || typeof version !== "string" || version === "")
    throw malformedAnswer(hub, "tree entry (size or oid)");
  const prefix = root.path === "" ? "" : `${root.path}/`;
  // The Hub lists paths from the repository's root; the key is below the listed directory.
  if (!entry.path.startsWith(prefix)) throw malformedAnswer(hub, "tree entry outside the listed directory");
  return { key: entry.path.slice(prefix.length), url: formatHfUrl({ ...root, path: entry.path, revision: sha }), size, version };
}

/** The `rel="next"` target of a Link header; only on the hub's own origin, since the token goes with it. */
function nextPageOf(hub: Hub, link: string | null): string | undefined {
  if (link === null) return undefined;
  for (const part of link.split(",")) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match === null || !/\brel="?next"?/.test(match[2] ?? "")) continue;
    let next: URL;
    try {
      next = new URL(match[1] ?? "", hub.endpoint);
    } catch {
      throw malformedAnswer(hub, "Link header");
    }
    if (next.origin !== new URL(hub.endpoint).origin) throw malformedAnswer(hub, "Link header (next page on another host)");
    return next.toString();
  }
  return undefined;
}
