import type { Download } from "@lacewing/api";
import {
  ErrorCode,
  LacewingError,
  MAX_TIMER_MS,
  PIECE_LENGTH_RULE,
  checkSourceUrl,
  isPieceLength,
  ociBlobDigestOf,
  parseDigest,
  parseUrl,
  taskIdOf,
  type PersistentCacheMeta,
} from "@lacewing/common";
import type { S3Access } from "@lacewing/sources";

/** What a caller asks the daemon for (a Download message, unwrapped). */
export interface DownloadSpec {
  url: string;
  tag: string;
  application: string;
  filteredQueryParams: string[];
  /** For the origin only: never stored on disk, never logged. */
  requestHeaders: Record<string, string>;
  /** The digest the content must have: the caller's, or an OCI blob URL's own; empty when neither. */
  digest: string;
  pieceLength: number;
  outputPath: string;
  timeoutMs: number;
  /** Fail rather than fetch from the origin when peers cannot serve. */
  disableBackToSource?: boolean;
  /** Started by the scheduler (seed fetch, preheat), not by a local client. */
  triggered?: boolean;
  /** For s3:// URLs: the caller's credentials and endpoint, or undefined for this daemon's own. Like requestHeaders: never stored, never logged. */
  objectStorage?: S3Access;
  /** For s3:// URLs: the pinned ETag (part of the task id); empty until resolved (see source/s3-source.ts). */
  sourceVersion?: string;
  /**
   * A persistent cache task (dfcache export, or a replica the scheduler
   * ordered): the task id is this, not the URL's, and it comes from peers
   * only. `url` is then `dfcache://<id>`, for logs and the store.
   */
  persistent?: { taskId: string; cache: PersistentCacheMeta };
}

/** The spec of a download of a persistent cache task: from peers only, never from an origin. */
export function persistentSpecOf(
  taskId: string,
  cache: PersistentCacheMeta,
  fields: { outputPath: string; timeoutMs: number; triggered: boolean },
): DownloadSpec {
  return {
    url: `dfcache://${taskId}`,
    tag: "",
    application: "",
    filteredQueryParams: [],
    requestHeaders: {},
    digest: "",
    pieceLength: 0,
    outputPath: fields.outputPath,
    timeoutMs: fields.timeoutMs,
    disableBackToSource: true,
    triggered: fields.triggered,
    persistent: { taskId, cache },
  };
}

/** Checks a Download message and turns it into a spec; a missing or bad URL is invalid_argument. */
export function downloadSpecOf(download: Download | undefined): DownloadSpec {
  if (!download?.url) throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "download.url is required");
  checkSourceUrl(download.url);
  const storage = download.objectStorage;
  if (storage?.endpoint) {
    // The endpoint is reached like any origin (source/s3-source.ts checks it against the policy); here only its syntax.
    const endpoint = (() => {
      try {
        return parseUrl(storage.endpoint);
      } catch {
        throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "download.object_storage.endpoint must be an http or https URL");
      }
    })();
    if (endpoint.username !== "" || endpoint.password !== "")
      throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "download.object_storage.endpoint must not hold credentials");
  }
  const pieceLength = Number(download.pieceLength);
  if (pieceLength !== 0 && !isPieceLength(pieceLength))
    throw new LacewingError(ErrorCode.badRequest, "invalid_argument", `piece length ${pieceLength} is not ${PIECE_LENGTH_RULE}`);
  // The deadline becomes AbortSignal.timeout, which fires at once beyond the timer limit.
  if (download.timeoutMs > BigInt(MAX_TIMER_MS))
    throw new LacewingError(ErrorCode.badRequest, "invalid_argument", `download.timeout_ms ${download.timeoutMs} is above ${MAX_TIMER_MS} (about 24.8 days)`);
  return {
    url: download.url,
    tag: download.tag,
    application: download.application,
    filteredQueryParams: download.filteredQueryParams,
    requestHeaders: download.requestHeaders,
    digest: expectedDigestOf(download.url, download.digest),
    pieceLength,
    outputPath: download.outputPath,
    timeoutMs: Number(download.timeoutMs),
    disableBackToSource: download.disableBackToSource,
    triggered: download.triggered,
    ...(storage === undefined
      ? {}
      : {
          objectStorage: {
            accessKeyId: storage.accessKeyId,
            secretAccessKey: storage.secretAccessKey,
            sessionToken: storage.sessionToken,
            region: storage.region,
            endpoint: storage.endpoint,
            forcePathStyle: storage.forcePathStyle,
          },
        }),
    sourceVersion: download.sourceVersion,
  };
}

/** The task id a spec names: its URL without volatile query parameters (an s3:// object's pinned version), tag and application. */
export function taskIdOfSpec(spec: DownloadSpec): string {
  if (spec.persistent !== undefined) return spec.persistent.taskId;
  return taskIdOf({
    url: spec.url,
    tag: spec.tag,
    application: spec.application,
    filteredQueryParams: spec.filteredQueryParams,
    ...(spec.sourceVersion === undefined ? {} : { sourceVersion: spec.sourceVersion }),
  });
}

/**
 * The digest a download must match: the caller's, or the one an OCI blob
 * URL names (verified even when nobody asked). A caller's digest that
 * contradicts the blob's is a bad request.
 */
export function expectedDigestOf(url: string, digest: string): string {
  const blob = ociBlobDigestOf(url);
  if (digest === "") return blob ?? "";
  const given = parseDigest(digest);
  const canonical = `${given.algorithm}:${given.hex}`;
  if (blob !== undefined && blob !== canonical)
    throw new LacewingError(ErrorCode.badDigest, "invalid_argument", `digest ${canonical} contradicts the blob digest ${blob} in the URL`);
  return canonical;
}
