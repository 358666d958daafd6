/**
 * Sources beyond plain http(s): object storage and model hubs. Each turns its
 * own URLs into what the daemon downloads (an https URL and headers) and
 * lists directories for `dfget -r`.
 *
 * ```ts
 * import { listHf, resolveHfFile } from "@lacewing/sources";
 * const file = await resolveHfFile("hf://owner/model/config.json@main"); // { url: …/resolve/<sha>/config.json, headers, revision }
 * for await (const entry of listHf("hf://datasets/owner/data/train")) console.log(entry.key, entry.url);
 * ```
 */
export type { ListFiles, ListOptions, RemoteFile } from "./remote-file.js";
export { DEFAULT_HF_REVISION, formatHfUrl, isCommitSha, isHfUrl, parseHfUrl, type HfRepoType, type HfUrl } from "./hf/hf-url.js";
export { DEFAULT_HF_ENDPOINT, hubOf, type Hub, type HubOptions } from "./hf/hub.js";
export { hfDownloadOf, resolveHfFile, type ResolvedHfFile } from "./hf/resolve-hf-file.js";
export { listHf } from "./hf/list-hf.js";
