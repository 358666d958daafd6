import { isS3Url } from "@lacewing/common";
import type { RemoteFile } from "@lacewing/sources";
import { authorizationOf, isHubUrl, withHubDownload } from "./hub-url.js";
import type { DfgetRequest } from "./options.js";

/** A hub's LFS id is the content's SHA-256; a small file's is a git blob id, which names no digest the daemon checks. */
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The single-file request for one file of a listing, pinned to the version
 * the listing saw, without asking the source again: an s3:// object's ETag
 * (the daemon skips its HeadObject, and an object overwritten since fails
 * with LW_ERR_OBJECT_CHANGED rather than mixing contents), an hf:// file's
 * commit (listHf pins every URL) with the token header and, for an LFS file,
 * its SHA-256 as the digest the daemon verifies. The task id is the one a
 * `dfget` of that file alone computes.
 */
export async function requestForListedFile(request: DfgetRequest, file: RemoteFile, env: NodeJS.ProcessEnv): Promise<DfgetRequest> {
  if (isS3Url(file.url)) return { ...request, download: { ...request.download, sourceVersion: file.version } };
  if (!isHubUrl(file.url)) return request;
  const { hfDownloadOf } = await import("@lacewing/sources");
  const authorization = authorizationOf(request);
  const hub = hfDownloadOf(file.url, { env, tokenFile: true, ...(authorization === undefined ? {} : { authorization }) });
  return withHubDownload(request, { ...hub, digest: SHA256_HEX.test(file.version) ? `sha256:${file.version}` : "" });
}
