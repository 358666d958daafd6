/**
 * Sources beyond plain HTTP: object storage (s3://) and, later, model hubs.
 *
 * ```ts
 * const access = await resolveS3Access(process.env);          // the caller's AWS_* / profile
 * const { etag, size } = await statS3Object("s3://bucket/key", access);
 * for await (const file of listS3("s3://bucket/prefix/")) console.log(file.key, file.size);
 * ```
 *
 * The AWS SDK is loaded on first use, so importing this package costs a
 * process nothing until it meets an s3:// URL.
 */
export type { ListFiles, ListOptions, RemoteFile } from "./remote-file.js";
export {
  createS3ReadSigner,
  listS3,
  resolveS3Access,
  s3SettingsOf,
  statS3Object,
  type S3Access,
  type S3CallOptions,
  type S3ObjectStat,
  type S3ReadSigner,
} from "./s3.js";
