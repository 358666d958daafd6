import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { request } from "undici";
import { ErrorCode, isLacewingError } from "@lacewing/common";
import { createS3ReadSigner, listS3, resolveS3Access, statS3Object, type RemoteFile } from "@lacewing/sources";
import { TestS3Origin } from "./s3-origin.js";

async function collect(files: AsyncIterable<RemoteFile>): Promise<RemoteFile[]> {
  const out: RemoteFile[] = [];
  for await (const file of files) out.push(file);
  return out;
}

function rejectsWith(code: string): (err: unknown) => boolean {
  return (err) => isLacewingError(err) && err.code === code;
}

describe("@lacewing/sources against s3rver behind the SigV4-verifying front", () => {
  const origin = new TestS3Origin(["models", "empty"]);
  before(async () => {
    await origin.start();
    await origin.put("models", "llm/config.json", Buffer.from("{}"));
    await origin.put("models", "llm/weights/part-1.bin", Buffer.alloc(1000, 1));
    await origin.put("models", "llm/weights/part 2.bin", Buffer.alloc(2000, 2));
    await origin.put("models", "other/x.bin", Buffer.alloc(10, 3));
    // Enough keys for several pages at MaxKeys 1000 would be slow on s3rver; pagination is checked with many small objects below.
  });
  after(() => origin.close());

  it("listS3 lists every object below the prefix, keys relative to it, urls s3://bucket/<key>, versions the ETags", async () => {
    const files = await collect(listS3("s3://models/llm/", { env: origin.env() }));
    assert.deepEqual(
      files.map((f) => [f.key, f.url, f.size]),
      [
        ["config.json", "s3://models/llm/config.json", 2],
        ["weights/part 2.bin", "s3://models/llm/weights/part 2.bin", 2000],
        ["weights/part-1.bin", "s3://models/llm/weights/part-1.bin", 1000],
      ],
    );
    const stat = await statS3Object("s3://models/llm/config.json", await resolveS3Access(origin.env()));
    assert.equal(files[0]!.version, stat.etag);
    assert.match(stat.etag, /^"[0-9a-f]{32}"$/);
    assert.ok(origin.verified.header > 0, "the front checked header signatures");
  });

  it("listS3 follows continuation tokens across pages", async () => {
    for (let i = 0; i < 1005; i++) await origin.put("empty", `many/${String(i).padStart(4, "0")}`, Buffer.from("x"));
    const files = await collect(listS3("s3://empty/many", { env: origin.env() }));
    assert.equal(files.length, 1005);
    assert.equal(files.at(-1)!.key, "1004");
  });

  it("a missing bucket, a missing key and a wrong secret are each their own error", async () => {
    await assert.rejects(
      collect(listS3("s3://nothere/x/", { env: origin.env() })),
      (err) => rejectsWith(ErrorCode.objectNotFound)(err) && /bucket nothere does not exist/.test((err as Error).message),
    );
    const access = await resolveS3Access(origin.env());
    await assert.rejects(
      statS3Object("s3://nothere/x", access),
      (err) => rejectsWith(ErrorCode.objectNotFound)(err) && /bucket nothere does not exist/.test((err as Error).message),
    );
    await assert.rejects(
      statS3Object("s3://models/missing.bin", access),
      (err) => rejectsWith(ErrorCode.objectNotFound)(err) && /no object missing.bin in bucket models/.test((err as Error).message),
    );
    const refusedBefore = origin.refused;
    await assert.rejects(statS3Object("s3://models/llm/config.json", { ...access, secretAccessKey: "wrong" }), rejectsWith(ErrorCode.objectAccessDenied));
    await assert.rejects(
      collect(listS3("s3://models/llm/", { env: origin.env({ AWS_SECRET_ACCESS_KEY: "wrong" }) })),
      rejectsWith(ErrorCode.objectAccessDenied),
    );
    assert.ok(origin.refused > refusedBefore, "the front refused the bad signatures");
  });

  it("a presigned GET reads ranges, is refused when tampered with, and fails with 412 once the object is overwritten", async () => {
    await origin.put("models", "ranged.bin", Buffer.from("0123456789"));
    const access = await resolveS3Access(origin.env());
    const { etag } = await statS3Object("s3://models/ranged.bin", access);
    const signer = await createS3ReadSigner("s3://models/ranged.bin", access, { etag });
    try {
      const url = await signer.url();
      assert.match(url, /X-Amz-Signature=/);
      const ok = await request(url, { headers: { range: "bytes=2-4", "if-match": etag } });
      assert.equal(ok.statusCode, 206);
      assert.equal(await ok.body.text(), "234");
      const tampered = await request(url.replace("ranged.bin", "other.bin"), { headers: { "if-match": etag } });
      assert.equal(tampered.statusCode, 403);
      assert.match(await tampered.body.text(), /SignatureDoesNotMatch/);
      await origin.put("models", "ranged.bin", Buffer.from("abcdefghij"));
      const changed = await request(url, { headers: { range: "bytes=2-4", "if-match": etag } });
      assert.equal(changed.statusCode, 412);
      await changed.body.dump();
    } finally {
      signer.close();
    }
  });
});
