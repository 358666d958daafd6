import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { LookupFunction } from "node:net";
// Types only: the SDK itself is loaded on first use (loadSdk).
import type * as S3SdkModule from "@aws-sdk/client-s3";
import type { ListObjectsV2CommandOutput, S3Client } from "@aws-sdk/client-s3";
import type * as CredentialProvidersModule from "@aws-sdk/credential-providers";
import { ErrorCode, LacewingError, isAbortError, parseS3Url, s3UrlOf, type S3Location } from "@lacewing/common";
import type { ListFiles, RemoteFile } from "./remote-file.js";

type S3Sdk = typeof S3SdkModule;

/**
 * How to reach an S3-compatible store: the caller's credentials and
 * endpoint, as the AWS conventions resolved them. The same shape as the
 * protocol's `ObjectStorage` message; empty strings are "not given". Secret:
 * never logged, never stored.
 */
export interface S3Access {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Empty: AWS_REGION of the process that signs, else us-east-1. */
  region: string;
  /** An S3-compatible endpoint ("http://host:port"); empty for AWS's own. */
  endpoint: string;
  /** https://endpoint/bucket/key instead of https://bucket.endpoint/key. */
  forcePathStyle: boolean;
}

/** The object a download pins: its ETag (quoted, as S3 gives it) and length. */
export interface S3ObjectStat {
  etag: string;
  size: number;
}

export interface S3CallOptions {
  /** Where AWS_* settings are read from when `access` leaves them empty; the process's environment by default. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** DNS lookup for the store's connections (the daemon passes its origin policy's). */
  lookup?: LookupFunction;
}

const DEFAULT_REGION = "us-east-1";

/** True for "1", "true", "yes" in any case: what AWS_S3_FORCE_PATH_STYLE takes. */
function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes)$/i.test(value.trim());
}

/** Region, endpoint and path style from AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and AWS_S3_FORCE_PATH_STYLE. */
export function s3SettingsOf(env: NodeJS.ProcessEnv): Pick<S3Access, "region" | "endpoint" | "forcePathStyle"> {
  return {
    region: env["AWS_REGION"] || env["AWS_DEFAULT_REGION"] || "",
    endpoint: env["AWS_ENDPOINT_URL_S3"] || env["AWS_ENDPOINT_URL"] || "",
    forcePathStyle: isTrue(env["AWS_S3_FORCE_PATH_STYLE"]),
  };
}

/**
 * The caller's access to S3, resolved where the caller runs (dfget, the
 * manager) so it can travel with the download to the daemon that fetches:
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or else the
 * profile of AWS_PROFILE (or `default`) in the shared config and credentials
 * files, through the SDK's own provider (assume-role, SSO and
 * credential_process included). With neither, the credentials stay empty
 * and the fetching daemon uses its own default chain (an instance role):
 * instance metadata is never asked here, where it would be the wrong
 * machine's and costs a timeout off EC2.
 */
export async function resolveS3Access(env: NodeJS.ProcessEnv, overrides: { forcePathStyle?: boolean } = {}): Promise<S3Access> {
  const settings = s3SettingsOf(env);
  const access: S3Access = {
    ...settings,
    forcePathStyle: overrides.forcePathStyle ?? settings.forcePathStyle,
    accessKeyId: "",
    secretAccessKey: "",
    sessionToken: "",
  };
  const keyId = env["AWS_ACCESS_KEY_ID"];
  const secret = env["AWS_SECRET_ACCESS_KEY"];
  if (keyId && secret) return { ...access, accessKeyId: keyId, secretAccessKey: secret, sessionToken: env["AWS_SESSION_TOKEN"] ?? "" };
  if (!env["AWS_PROFILE"] && !(await sharedFilesExist(env))) return access;
  const { fromIni } = await loadCredentialProviders();
  try {
    const credentials = await fromIni({ ...(env["AWS_PROFILE"] ? { profile: env["AWS_PROFILE"] } : {}) })();
    return { ...access, accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken ?? "" };
  } catch (err) {
    // No profile named and none usable in the files: the daemon's own chain decides, as with no files at all.
    if (!env["AWS_PROFILE"]) return access;
    throw new LacewingError(
      ErrorCode.config,
      "invalid_argument",
      `AWS_PROFILE ${JSON.stringify(env["AWS_PROFILE"])} gives no credentials: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

async function sharedFilesExist(env: NodeJS.ProcessEnv): Promise<boolean> {
  const { access } = await import("node:fs/promises");
  const { homedir } = await import("node:os");
  const { join } = await import("node:path");
  const home = env["HOME"] || homedir();
  const files = [env["AWS_SHARED_CREDENTIALS_FILE"] || join(home, ".aws", "credentials"), env["AWS_CONFIG_FILE"] || join(home, ".aws", "config")];
  for (const file of files) {
    try {
      await access(file);
      return true;
    } catch {
      // Next file.
    }
  }
  return false;
}

/**
 * The SDK, loaded on first use: a dfget of an http URL never pays for it.
 * The SDK warns once per process, on stderr, that future versions will
 * need Node 22; on Node 20 that line would break dfget's one-line errors
 * and the daemon's JSON logs, and it says nothing the operator can act on
 * here, so it is switched off by the SDK's own variable unless the user set it.
 */
async function loadSdk(): Promise<S3Sdk> {
  process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
  return import("@aws-sdk/client-s3");
}

async function loadCredentialProviders(): Promise<typeof CredentialProvidersModule> {
  process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
  return import("@aws-sdk/credential-providers");
}

/** An S3 client for `access`; what it leaves empty comes from `env`, and empty credentials mean the SDK's default chain. */
async function clientOf(access: Partial<S3Access> | undefined, options: S3CallOptions): Promise<S3Client> {
  const sdk = await loadSdk();
  const settings = s3SettingsOf(options.env ?? process.env);
  const endpoint = access?.endpoint || settings.endpoint;
  const requestHandler = options.lookup === undefined ? undefined : handlerOptions(options.lookup);
  return new sdk.S3Client({
    region: access?.region || settings.region || DEFAULT_REGION,
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: access?.forcePathStyle === true || settings.forcePathStyle,
    ...(access?.accessKeyId && access.secretAccessKey
      ? {
          credentials: {
            accessKeyId: access.accessKeyId,
            secretAccessKey: access.secretAccessKey,
            ...(access.sessionToken ? { sessionToken: access.sessionToken } : {}),
          },
        }
      : {}),
    ...(requestHandler === undefined ? {} : { requestHandler }),
    // The daemon's and dfget's own retry and backoff decide; the SDK's would hide a refusal behind seconds of retries.
    maxAttempts: 2,
  });
}

function handlerOptions(lookup: LookupFunction): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  // net.connect takes `lookup` from the agent's options: every address the store's name resolves to is checked.
  return { httpAgent: new HttpAgent({ keepAlive: true, lookup } as never), httpsAgent: new HttpsAgent({ keepAlive: true, lookup } as never) };
}

/** Whether S3 (or a store speaking its protocol) said the credentials are wrong or not allowed. */
function isDenied(err: unknown): boolean {
  const name = (err as { name?: string }).name ?? "";
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return (
    status === 403 ||
    status === 401 ||
    ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "ExpiredToken", "InvalidToken", "CredentialsProviderError"].includes(name)
  );
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** One S3 failure as the error users see: a missing bucket or key, refused credentials, or an unreachable store. */
function s3ErrorOf(err: unknown, what: string, location: S3Location): LacewingError {
  if (err instanceof LacewingError) return err;
  if (isAbortError(err)) return new LacewingError(ErrorCode.cancelled, "cancelled", `${what} was cancelled`, { cause: err });
  const name = (err as { name?: string }).name ?? "";
  if (name === "NoSuchBucket") return notFound(location, "bucket", err);
  if (name === "NoSuchKey") return notFound(location, "key", err);
  if (isDenied(err))
    return new LacewingError(
      ErrorCode.objectAccessDenied,
      "permission_denied",
      `the object store refused the credentials for s3://${location.bucket}/ (${name || `HTTP ${statusOf(err)}`})`,
      { cause: err },
    );
  const status = statusOf(err);
  if (status !== undefined)
    return new LacewingError(
      ErrorCode.originStatus,
      status >= 500 ? "unavailable" : "failed_precondition",
      `${what} failed: the object store answered HTTP ${status} (${name})`,
      {
        cause: err,
        details: { status, retryable: status >= 500 },
      },
    );
  return new LacewingError(
    ErrorCode.originUnreachable,
    "unavailable",
    `cannot reach the object store for s3://${location.bucket}/: ${(err as Error).message}`,
    { cause: err },
  );
}

function notFound(location: S3Location, what: "bucket" | "key", cause?: unknown): LacewingError {
  return new LacewingError(
    ErrorCode.objectNotFound,
    "not_found",
    what === "bucket" ? `bucket ${location.bucket} does not exist` : `no object ${location.key} in bucket ${location.bucket}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * HeadObject: the ETag a download pins and the object's length. A 404 (HEAD
 * has no body to say which) is told apart by a HeadBucket, so the message
 * says whether the bucket or the key is missing.
 */
export async function statS3Object(url: string, access: Partial<S3Access> | undefined, options: S3CallOptions = {}): Promise<S3ObjectStat> {
  const location = parseS3Url(url);
  const sdk = await loadSdk();
  const client = await clientOf(access, options);
  try {
    const head = await client.send(
      new sdk.HeadObjectCommand({ Bucket: location.bucket, Key: location.key }),
      options.signal === undefined ? {} : { abortSignal: options.signal },
    );
    if (!head.ETag) throw new LacewingError(ErrorCode.originProtocol, "unavailable", `the object store gave no ETag for ${s3UrlOf(location)}`);
    return { etag: head.ETag, size: head.ContentLength ?? -1 };
  } catch (err) {
    if (statusOf(err) !== 404) throw s3ErrorOf(err, `HeadObject of ${s3UrlOf(location)}`, location);
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: location.bucket }), options.signal === undefined ? {} : { abortSignal: options.signal });
    } catch (bucketErr) {
      if (statusOf(bucketErr) === 404) throw notFound(location, "bucket", bucketErr);
      throw s3ErrorOf(bucketErr, `HeadBucket of ${location.bucket}`, location);
    }
    throw notFound(location, "key", err);
  } finally {
    client.destroy();
  }
}

export interface S3ReadSigner {
  /** A presigned GET of the object, valid for a while yet: re-signed once it is older than a third of its lifetime. */
  url(): Promise<string>;
  close(): void;
}

/**
 * Presigned GETs (SigV4 query signing) of one object, for the daemon's
 * ranged reader: each piece request carries `Range` (unsigned) and
 * `If-Match: <etag>` (signed), so an object overwritten mid-download fails
 * with 412 instead of mixing contents. The signature parameters are
 * filtered out of task ids and redacted in logs like any signed URL's.
 */
export async function createS3ReadSigner(
  url: string,
  access: Partial<S3Access> | undefined,
  options: S3CallOptions & { etag: string; expiresInSeconds?: number },
): Promise<S3ReadSigner> {
  const location = parseS3Url(url);
  const sdk = await loadSdk();
  const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
  const client = await clientOf(access, options);
  const lifetimeMs = (options.expiresInSeconds ?? 900) * 1000;
  let current: { url: string; signedAt: number } | undefined;
  let pending: Promise<string> | undefined;
  const sign = async (): Promise<string> => {
    try {
      const signed = await getSignedUrl(client, new sdk.GetObjectCommand({ Bucket: location.bucket, Key: location.key, IfMatch: options.etag }), {
        expiresIn: lifetimeMs / 1000,
      });
      current = { url: signed, signedAt: Date.now() };
      return signed;
    } catch (err) {
      throw s3ErrorOf(err, `signing a GET of ${s3UrlOf(location)}`, location);
    } finally {
      pending = undefined;
    }
  };
  return {
    async url() {
      if (current !== undefined && Date.now() - current.signedAt < lifetimeMs / 3) return current.url;
      pending ??= sign();
      return pending;
    },
    close() {
      client.destroy();
    },
  };
}

/**
 * Lists every object below `s3://bucket/prefix/` (ListObjectsV2, page by
 * page): `key` is the key below the prefix, `url` the object's own
 * s3:// URL, `version` its ETag. "Directories" (keys ending in /) are skipped.
 */
export const listS3: ListFiles = (rootUrl, options = {}) => ({
  async *[Symbol.asyncIterator](): AsyncGenerator<RemoteFile> {
    const location = parseS3Url(rootUrl, { prefix: true });
    const prefix = location.key === "" || location.key.endsWith("/") ? location.key : `${location.key}/`;
    const env = options.env ?? process.env;
    const sdk = await loadSdk();
    const client = await clientOf(await resolveS3Access(env), { env });
    try {
      let token: string | undefined;
      do {
        let page: ListObjectsV2CommandOutput;
        try {
          page = await client.send(
            new sdk.ListObjectsV2Command({ Bucket: location.bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }),
            options.signal === undefined ? {} : { abortSignal: options.signal },
          );
        } catch (err) {
          throw s3ErrorOf(err, `listing s3://${location.bucket}/${prefix}`, location);
        }
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined || object.Key.endsWith("/")) continue;
          yield {
            key: object.Key.slice(prefix.length),
            url: s3UrlOf({ bucket: location.bucket, key: object.Key }),
            size: object.Size ?? 0,
            version: object.ETag ?? "",
          };
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } finally {
      client.destroy();
    }
  },
});
