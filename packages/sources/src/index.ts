/**
 * Sources beyond plain http(s): object storage (s3://) and model hubs
 * (hf://). Each names its objects by its own URLs; the hub turns a file into
 * what the daemon downloads (an https URL and headers), an s3:// object is
 * read by the daemon itself (presigned ranged GETs); both list directories
 * for `dfget -r`.
 *
 * ```ts
 * const access = await resolveS3Access(process.env);          // the caller's AWS_* / profile
 * const { etag, size } = await statS3Object("s3://bucket/key", access);
 * for await (const file of listS3("s3://bucket/prefix/")) console.log(file.key, file.size);
 * const file = await resolveHfFile("hf://owner/model/config.json@main"); // { url: …/resolve/<sha>/config.json, headers, revision }
 * for await (const entry of listHf("hf://datasets/owner/data/train")) console.log(entry.key, entry.url);
 * ```
 *
 * The AWS SDK is loaded on first use, so importing this package costs a
 * process nothing until it meets an s3:// URL.
 */
export type { ListFiles, ListOptions, RemoteFile } from "./remote-file.js";
export { DEFAULT_HF_REVISION, formatHfUrl, isCommitSha, isHfUrl, parseHfUrl, type HfRepoType, type HfUrl } from "./hf/hf-url.js";
export { DEFAULT_HF_ENDPOINT, hubOf, type Hub, type HubOptions } from "./hf/hub.js";
export { hfDownloadOf, resolveHfFile, type ResolvedHfFile } from "./hf/resolve-hf-file.js";
export { listHf } from "./hf/list-hf.js";
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
