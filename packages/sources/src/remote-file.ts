/**
 * One file of a listed directory (an S3 prefix, a model hub repository):
 * what `dfget -r` downloads, each as a task of its own.
 */
export interface RemoteFile {
  /** The path below the listed root, "/"-separated, as the source names it; not yet checked for traversal. */
  key: string;
  /** The URL that names this one file (s3://… or hf://…), as `dfget` would take it. */
  url: string;
  /** Bytes, as the listing says. */
  size: number;
  /** Changes whenever the content does: an S3 ETag or version id, a hub file's blob or LFS sha. */
  version: string;
}

export interface ListOptions {
  /** Where credentials and endpoints are read from (AWS_*, HF_*); the process's environment by default. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** Lists every file below a directory URL, in the source's order. */
export type ListFiles = (rootUrl: string, options?: ListOptions) => AsyncIterable<RemoteFile>;
