import { headerValue } from "@lacewing/common";
import type { DfgetRequest } from "./options.js";

/** True for a URL that names a file on a model hub rather than an http(s) origin. */
export function isHubUrl(url: string): boolean {
  return /^hf:\/\//i.test(url);
}

/**
 * Turns an `hf://` request into the ordinary download the daemon runs: the
 * Hub's `resolve/<commit sha>/<path>` URL (the revision pinned now, so the
 * task id names one commit) and the token as `Authorization`, which the
 * daemon sends only to the hub's own host, never to the storage host it is
 * redirected to. An explicit `-H 'Authorization: …'` wins over HF_TOKEN.
 * Any other request is returned as it is. A missing repository, revision or
 * file fails here, before the daemon is asked and before any byte is written.
 * An LFS file is verified against the SHA-256 the Hub names for it.
 */
export async function resolveHubUrl(request: DfgetRequest, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<DfgetRequest> {
  if (!isHubUrl(request.download.url)) return request;
  // Loaded only for hub URLs: a plain download starts without the sources package.
  const { resolveHfFile } = await import("@lacewing/sources");
  const authorization = authorizationOf(request);
  const file = await resolveHfFile(request.download.url, {
    env,
    // A user's CLI: the token `huggingface-cli login` stored counts, as it does for huggingface_hub.
    tokenFile: true,
    ...(authorization === undefined ? {} : { authorization }),
    ...(signal === undefined ? {} : { signal }),
  });
  return withHubDownload(request, file);
}

/** The caller's own Authorization (`-H`), which wins over the hub token of the environment. */
export function authorizationOf(request: DfgetRequest): string | undefined {
  return headerValue(request.download.requestHeaders ?? {}, "authorization");
}

/**
 * The request with the hub's download in place of its hf:// URL: the
 * resolve URL and token header (the caller's `-H` headers win), and an LFS
 * file's SHA-256, known ahead, as the digest the daemon verifies unless
 * --digest asked for another.
 */
export function withHubDownload(request: DfgetRequest, hub: { url: string; headers: Record<string, string>; digest: string }): DfgetRequest {
  const digest = request.download.digest === undefined || request.download.digest === "" ? hub.digest : request.download.digest;
  const requestHeaders = { ...hub.headers, ...(request.download.requestHeaders ?? {}) };
  return { ...request, download: { ...request.download, url: hub.url, digest, requestHeaders } };
}
