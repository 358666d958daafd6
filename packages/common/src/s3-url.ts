import { ErrorCode } from "./error-codes.js";
import { LacewingError } from "./errors.js";

/** An object (or, for a listing, a prefix) in an S3 bucket. */
export interface S3Location {
  bucket: string;
  /** The key exactly as written after `s3://bucket/`: not percent-decoded, as the AWS CLI reads it. */
  key: string;
}

/** S3's bucket naming rules (3 to 63 characters, lower-case letters, digits, dots and hyphens, a letter or digit at each end). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** S3 keys are at most 1 024 bytes of UTF-8. */
const MAX_KEY_BYTES = 1024;

export function isS3Url(url: string): boolean {
  return /^s3:\/\//i.test(url);
}

/**
 * Parses `s3://bucket/key` (or, with `prefix`, `s3://bucket/prefix/`, where
 * the prefix may be empty) or throws LW_ERR_BAD_URL saying what is wrong.
 * Messages quote the URL: an s3:// URL names an object and holds no secret.
 */
export function parseS3Url(url: string, options: { prefix?: boolean } = {}): S3Location {
  const bad = (why: string): LacewingError => new LacewingError(ErrorCode.badUrl, "invalid_argument", `not a valid s3 URL ${JSON.stringify(url)}: ${why}`);
  if (!isS3Url(url)) throw bad("expected s3://bucket/key");
  const rest = url.slice("s3://".length);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? "" : rest.slice(slash + 1);
  if (bucket === "") throw bad("the bucket is missing");
  if (!BUCKET.test(bucket) || bucket.includes(".."))
    throw bad(`${JSON.stringify(bucket)} is not a bucket name (3-63 lower-case letters, digits, dots and hyphens)`);
  if (!options.prefix && key === "") throw bad("the key is missing (s3://bucket/key)");
  if (!options.prefix && key.endsWith("/")) throw bad("the key ends with / (a directory: download it with dfget -r)");
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw bad(`the key is longer than ${MAX_KEY_BYTES} bytes`);
  if (/[\0-\x1f\x7f]/.test(key)) throw bad("the key contains a control character");
  return { bucket, key };
}

/** The one spelling of an object's URL: `s3://bucket/key`. */
export function s3UrlOf(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}
