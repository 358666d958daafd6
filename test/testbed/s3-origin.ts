// The object store of the model-directory benchmark: s3rver (an S3-protocol
// server in Node) on the origin host, filled with a model directory of
// random files at start-up, counting the object bytes it serves per client.
//   node s3-origin.js --dir DIR --port 9000 --stats-port 9001 --bucket B --prefix model/ --files 20 --mib 4096
// It prints one JSON line {"ready":true,"files":[{key,size,sha256}]} once it serves.
// GET http://HOST:STATS_PORT/ gives {"bytes":N,"requests":N,"byClient":{ip:bytes}}.
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import S3rver from "s3rver";

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    port: { type: "string", default: "9000" },
    "stats-port": { type: "string", default: "9001" },
    bucket: { type: "string", default: "models" },
    prefix: { type: "string", default: "model/" },
    files: { type: "string", default: "20" },
    mib: { type: "string", default: "4096" },
  },
});
if (values.dir === undefined) throw new Error("--dir is required");
const MiB = 1024 * 1024;
const s3 = new S3rver({ directory: values.dir, silent: true, configureBuckets: [{ name: values.bucket, configs: [] }] });
await s3.configureBuckets();

// Files of uneven sizes, as in a model directory (a few large shards, small configs), totalling --mib.
const count = Number(values.files);
const total = Number(values.mib) * MiB;
const weights = Array.from({ length: count }, (_, i) => (i < Math.ceil(count / 2) ? 8 : 1));
const unit = total / weights.reduce((a, b) => a + b, 0);
const files: Array<{ key: string; size: number; sha256: string }> = [];
for (let i = 0; i < count; i++) {
  const size = i === count - 1 ? total - files.reduce((n, f) => n + f.size, 0) : Math.floor(weights[i]! * unit);
  const key = `${values.prefix}${i < Math.ceil(count / 2) ? `model-${String(i + 1).padStart(5, "0")}-of-${String(Math.ceil(count / 2)).padStart(5, "0")}.safetensors` : `extra/part-${i}.bin`}`;
  const hash = createHash("sha256");
  // Written through the store, as a PUT would: s3rver keeps the object and its metadata (ETag) side by side.
  const chunks = (function* () {
    for (let left = size; left > 0; left -= 8 * MiB) {
      const chunk = randomBytes(Math.min(8 * MiB, left));
      hash.update(chunk);
      yield chunk;
    }
  })();
  const { Readable } = await import("node:stream");
  await (s3 as unknown as { store: { putObject(object: unknown): Promise<unknown> } }).store.putObject({
    bucket: values.bucket,
    key,
    metadata: { "content-type": "application/octet-stream" },
    content: Readable.from(chunks),
  });
  files.push({ key, size, sha256: hash.digest("hex") });
}

let bytes = 0;
let requests = 0;
const byClient: Record<string, number> = {};
const app = s3.callback();
const server = createServer((req, res) => {
  requests++;
  const client = req.socket.remoteAddress ?? "?";
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const count = (chunk: unknown): void => {
    if (chunk instanceof Uint8Array || typeof chunk === "string") {
      const n = typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength;
      if (req.method === "GET" && res.statusCode < 300) {
        bytes += n;
        byClient[client] = (byClient[client] ?? 0) + n;
      }
    }
  };
  res.write = function (this: typeof res, chunk: unknown, ...rest: unknown[]) {
    count(chunk);
    return write(chunk as never, ...(rest as []));
  } as typeof res.write;
  res.end = function (this: typeof res, chunk?: unknown, ...rest: unknown[]) {
    count(chunk);
    return end(chunk as never, ...(rest as []));
  } as typeof res.end;
  void app(req, res);
});
server.listen(Number(values.port), "0.0.0.0");
createServer((_req, res) => res.end(JSON.stringify({ bytes, requests, byClient }))).listen(Number(values["stats-port"]), "0.0.0.0");
server.once("listening", () => console.log(JSON.stringify({ ready: true, files })));
