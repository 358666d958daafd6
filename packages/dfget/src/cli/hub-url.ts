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
  const headers = request.download.requestHeaders ?? {};
  const authorization = Object.entries(headers).find(([name]) => name.toLowerCase() === "authorization")?.[1];
  const file = await resolveHfFile(request.download.url, {
    env,
    // A user's CLI: the token `huggingface-cli login` stored counts, as it does for huggingface_hub.
    tokenFile: true,
    ...(authorization === undefined ? {} : { authorization }),
    ...(signal === undefined ? {} : { signal }),
  });
  // An LFS file's SHA-256 is known ahead: the daemon verifies it unless --digest asked for another.
  const digest = request.download.digest === undefined || request.download.digest === "" ? file.digest : request.download.digest;
  return { ...request, download: { ...request.download, url: file.url, digest, requestHeaders: { ...file.headers, ...headers } } };
}
