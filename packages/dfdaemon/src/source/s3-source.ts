import { ErrorCode, isLacewingError, isS3Url, LacewingError } from "@lacewing/common";
import { createS3ReadSigner, s3SettingsOf, statS3Object } from "@lacewing/sources";
import type { Dispatcher } from "undici";
import type { DownloadSpec } from "../download/download-spec.js";
import type { OriginRequest } from "./origin-client.js";
import { checkOriginUrl, policyLookup, type OriginPolicy } from "./origin-policy.js";

/**
 * s3:// downloads. The caller's daemon pins the object's ETag once
 * (HeadObject) before the task id exists, so every peer and the seed name
 * the same task and read the same bytes; pieces are then read by the
 * ordinary ranged reader from presigned GETs that carry `If-Match`, so an
 * object overwritten mid-download fails with LW_ERR_OBJECT_CHANGED rather
 * than mixing two contents. The store's endpoint obeys the origin policy
 * like any origin.
 */

/** The store's endpoint, if one is set, checked against the policy (an IP literal never goes through the policy's DNS lookup). */
function checkEndpoint(spec: DownloadSpec, policy: OriginPolicy): void {
  const endpoint = spec.objectStorage?.endpoint || s3SettingsOf(process.env).endpoint;
  if (endpoint) checkOriginUrl(new URL(endpoint), policy);
}

/** `spec` with its s3:// object's version pinned (HeadObject with the caller's access, else this daemon's); any other spec unchanged. */
export async function pinSourceVersion(spec: DownloadSpec, policy: OriginPolicy, signal?: AbortSignal): Promise<DownloadSpec> {
  if (!isS3Url(spec.url) || spec.sourceVersion) return spec;
  checkEndpoint(spec, policy);
  const stat = await statS3Object(spec.url, spec.objectStorage, { lookup: policyLookup(policy), ...(signal === undefined ? {} : { signal }) });
  return { ...spec, sourceVersion: stat.etag };
}

export interface S3Origin {
  request: OriginRequest;
  close(): void;
}

/** The origin request of a pinned s3:// spec: a presigned GET, signed again when it ages, conditional on the pinned ETag. */
export async function s3OriginOf(spec: DownloadSpec, options: { signal: AbortSignal; dispatcher: Dispatcher; policy: OriginPolicy }): Promise<S3Origin> {
  const etag = spec.sourceVersion;
  if (!etag) throw new LacewingError(ErrorCode.badRequest, "invalid_argument", "an s3:// download reached its origin without a pinned version");
  checkEndpoint(spec, options.policy);
  const signer = await createS3ReadSigner(spec.url, spec.objectStorage, { etag });
  return {
    request: {
      url: await signer.url(),
      headers: { "if-match": etag },
      signal: options.signal,
      dispatcher: options.dispatcher,
      policy: options.policy,
      resign: () => signer.url(),
    },
    close: () => signer.close(),
  };
}

/** An origin failure of an s3:// read as the object store's condition: overwritten (412), refused (401/403), gone (404). */
export function s3ReadErrorOf(err: unknown, spec: DownloadSpec): unknown {
  if (!isLacewingError(err) || err.code !== ErrorCode.originStatus) return err;
  const status = err.details["status"];
  if (status === 412)
    return new LacewingError(
      ErrorCode.objectChanged,
      "failed_precondition",
      `${spec.url} was overwritten during the download (its ETag is no longer ${spec.sourceVersion}); download it again for the new object`,
      { cause: err },
    );
  if (status === 401 || status === 403)
    return new LacewingError(ErrorCode.objectAccessDenied, "permission_denied", `the object store refused the credentials for ${spec.url} (HTTP ${status})`, {
      cause: err,
    });
  if (status === 404) return new LacewingError(ErrorCode.objectNotFound, "not_found", `${spec.url} was deleted during the download`, { cause: err });
  return err;
}
