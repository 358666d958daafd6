// The baseline of the model-directory benchmark: one host reads every object
// below an S3 prefix straight from the bucket with the AWS SDK, as a training
// job's loader would without Lacewing, and prints what it read as JSON.
//   node s3-direct-read.js s3://BUCKET/PREFIX/ DIR [--max-concurrent N]
// Endpoint and credentials come from the AWS_* environment, as for dfget.
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import type { Readable } from "node:stream";

const { positionals, values } = parseArgs({ allowPositionals: true, options: { "max-concurrent": { type: "string", default: "4" } } });
const [root, outDir] = positionals;
const match = /^s3:\/\/([^/]+)\/(.*)$/.exec(root ?? "");
if (match === null || outDir === undefined) {
  console.error("usage: s3-direct-read s3://BUCKET/PREFIX/ DIR [--max-concurrent N]");
  process.exit(2);
}
const [, bucket, prefix] = match as unknown as [string, string, string];
const client = new S3Client({ forcePathStyle: true });
const started = performance.now();

const keys: string[] = [];
let token: string | undefined;
do {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }));
  for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
  token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
} while (token !== undefined);

let bytes = 0;
let next = 0;
async function worker(): Promise<void> {
  while (next < keys.length) {
    const key = keys[next++]!;
    const target = join(outDir!, key.slice(prefix.length));
    await mkdir(dirname(target), { recursive: true });
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const body = object.Body as Readable;
    body.on("data", (chunk: Buffer) => (bytes += chunk.byteLength));
    await pipeline(body, createWriteStream(target));
  }
}
await Promise.all(Array.from({ length: Math.max(1, Number(values["max-concurrent"])) }, worker));
console.log(JSON.stringify({ files: keys.length, bytes, elapsedMs: Math.round(performance.now() - started) }));
