import { ErrorCode, LacewingError } from "@lacewing/common";
import { DEFAULT_HF_REVISION, formatHfUrl, isCommitSha, parseHfUrl, type HfUrl } from "./hf-url.js";
import { hubOf, hubRequest, malformedAnswer, resolveUrlOf, type Hub, type HubOptions } from "./hub.js";

/** What the daemon downloads for one `hf://` file: an ordinary https download pinned to a commit. */
export interface ResolvedHfFile {
  /** `{endpoint}/…/resolve/<commit sha>/<path>`: the task id is made from it, so it names the commit, never a branch. */
  url: string;
  /** `Authorization` when there is a token; the daemon drops it on a redirect to another host (the Hub's storage). */
  headers: Record<string, string>;
  /** The commit sha the revision pointed at. */
  revision: string;
  /** The same file as a pinned `hf://…/<path>@<sha>` URL (safe to show: no credentials). */
  pinnedUrl: string;
  /** Bytes, as the Hub says; -1 when it did not. */
  size: number;
  /** The LFS sha256 or the git blob id, from the Hub's ETag; "" when it did not say. */
  version: string;
  /** `sha256:<hex>` for an LFS file (its LFS oid is the content's SHA-256), for the daemon to verify; "" for a small file. */
  digest: string;
}

const MAX_RELATIVE_REDIRECTS = 5;

/**
 * Resolves an `hf://` file URL to the download the daemon runs. One HEAD of
 * `resolve/<revision>/<path>`, as huggingface_hub's file metadata call does:
 * it tells the commit the revision points at (`X-Repo-Commit`), whether the
 * file exists and its size, and a missing repository, revision or file
 * fails here with the Hub's own reason, before any byte is fetched. Only
 * relative redirects (a renamed repository) are followed; the redirect of
 * an LFS file to the storage host is not, and the token is never sent there.
 */
export async function resolveHfFile(url: string, options: HubOptions = {}): Promise<ResolvedHfFile> {
  const parsed = parseHfUrl(url);
  if (parsed.path === "")
    throw new LacewingError(ErrorCode.badUrl, "invalid_argument", `${JSON.stringify(url)} names a whole repository, not a file (use dfget -r for directories)`);
  const hub = hubOf(options);
  const revision = parsed.revision ?? DEFAULT_HF_REVISION;
  const subject = { url: parsed, revision };
  let target = resolveUrlOf(hub, parsed, revision);
  let response: Response | undefined;
  for (let hop = 0; hop <= MAX_RELATIVE_REDIRECTS; hop++) {
    response = await hubRequest(hub, target, { method: "HEAD", signal: options.signal, subject });
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location !== null && location.startsWith("/") && !location.startsWith("//")) {
      target = new URL(location, target).toString();
      continue;
    }
    break;
  }
  if (response === undefined || (response.status >= 300 && response.status < 400 && response.headers.get("location")?.startsWith("/") === true))
    throw malformedAnswer(hub, "chain of redirects");
  if (response.status !== 200 && (response.status < 300 || response.status >= 400)) throw malformedAnswer(hub, `answer (HTTP ${response.status})`);
  const commit = response.headers.get("x-repo-commit") ?? (isCommitSha(revision) ? revision : "");
  if (!isCommitSha(commit)) throw malformedAnswer(hub, "file answer without a commit (X-Repo-Commit)");
  const size = Number(response.headers.get("x-linked-size") ?? response.headers.get("content-length") ?? -1);
  const etag = (response.headers.get("x-linked-etag") ?? response.headers.get("etag") ?? "").replace(/^W\//, "").replace(/^"|"$/g, "");
  // Only an LFS file (the Hub redirects it to storage) has its SHA-256 as ETag; a small file's is its git blob id.
  const lfs = response.status >= 300 && response.headers.get("x-linked-etag") !== null && /^[0-9a-f]{64}$/.test(etag);
  const pinned = { ...parsed, revision: commit };
  return {
    ...downloadOf(hub, pinned),
    revision: commit,
    pinnedUrl: formatHfUrl(pinned),
    size: Number.isSafeInteger(size) && size >= 0 ? size : -1,
    version: etag,
    digest: lfs ? `sha256:${etag}` : "",
  };
}

/**
 * The download of an `hf://…/<path>@<full commit sha>` URL (as listHf hands
 * them out) without asking the hub: the resolve URL of that commit and the
 * token header. Throws LW_ERR_BAD_URL for a URL that is not pinned to a full
 * sha (resolveHfFile pins one) or that names no file.
 */
export function hfDownloadOf(url: string, options: Omit<HubOptions, "signal"> = {}): { url: string; headers: Record<string, string> } {
  const parsed = parseHfUrl(url);
  if (parsed.path === "" || parsed.revision === undefined || !isCommitSha(parsed.revision))
    throw new LacewingError(ErrorCode.badUrl, "invalid_argument", `${JSON.stringify(url)} is not a file pinned to a full commit sha (hf://…/<path>@<sha>)`);
  return downloadOf(hubOf(options), { ...parsed, revision: parsed.revision });
}

function downloadOf(hub: Hub, pinned: HfUrl & { revision: string }): { url: string; headers: Record<string, string> } {
  return { url: resolveUrlOf(hub, pinned, pinned.revision), headers: hub.authorization === undefined ? {} : { Authorization: hub.authorization } };
}
