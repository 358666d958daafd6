// The object store of the model-directory benchmark, run on the testbed's
// origin host: the tests' S3 origin (s3rver behind the SigV4-verifying,
// byte-counting front of helpers/s3-origin.ts) on all addresses, filled at
// start-up with a model directory of random files.
//   node s3-origin.js --port 9000 --stats-port 9001 --bucket B --prefix model/ --files 20 --mib 4096
// Prints one JSON line {"ready":true,"files":[{key,size,sha256}],"env":{AWS_…}} once it serves
// (env: the keys a caller needs, with the endpoint's host left for the caller to fill in);
// GET http://HOST:STATS_PORT/ gives {"bytes":N} (object bytes served).
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { TestS3Origin } from "../helpers/s3-origin.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9000" },
    "stats-port": { type: "string", default: "9001" },
    bucket: { type: "string", default: "models" },
    prefix: { type: "string", default: "model/" },
    files: { type: "string", default: "20" },
    mib: { type: "string", default: "4096" },
  },
});
const MiB = 1024 * 1024;
const origin = new TestS3Origin([values.bucket], { host: "0.0.0.0", port: Number(values.port) });
await origin.start();
const stop = (): void => void origin.close().finally(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);

// Files of uneven sizes, as in a model directory: half of them large shards, the rest an eighth of one each, totalling --mib.
const count = Number(values.files);
const shards = Math.ceil(count / 2);
const weights = Array.from({ length: count }, (_, i) => (i < shards ? 8 : 1));
const unit = (Number(values.mib) * MiB) / weights.reduce((a, b) => a + b, 0);
const files: Array<{ key: string; size: number; sha256: string }> = [];
for (let i = 0; i < count; i++) {
  const size = i === count - 1 ? Number(values.mib) * MiB - files.reduce((n, f) => n + f.size, 0) : Math.floor(weights[i]! * unit);
  const name = i < shards ? `model-${String(i + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors` : `extra/part-${i}.bin`;
  const bytes = randomBytes(size);
  await origin.put(values.bucket, `${values.prefix}${name}`, bytes);
  files.push({ key: `${values.prefix}${name}`, size, sha256: createHash("sha256").update(bytes).digest("hex") });
}
createServer((_req, res) => res.end(JSON.stringify({ bytes: origin.bytesServed }))).listen(Number(values["stats-port"]), "0.0.0.0");
console.log(JSON.stringify({ ready: true, files, env: origin.env() }));
