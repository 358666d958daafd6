import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DownloadSchema, create } from "@lacewing/api";
import { ErrorCode, LacewingError } from "@lacewing/common";
import { downloadSpecOf, taskIdOfSpec } from "../download/download-spec.js";
import { s3ReadErrorOf } from "./s3-source.js";

const spec = downloadSpecOf(create(DownloadSchema, { url: "s3://bucket/model.bin", sourceVersion: '"e1"' }));

function originStatus(status: number): LacewingError {
  return new LacewingError(ErrorCode.originStatus, "failed_precondition", `origin returned HTTP ${status}`, { details: { status, retryable: false } });
}

describe("s3ReadErrorOf", () => {
  it("reads a failed If-Match (412) as the object overwritten mid-download, 403 as refused credentials, 404 as deleted", () => {
    const changed = s3ReadErrorOf(originStatus(412), spec) as LacewingError;
    assert.equal(changed.code, ErrorCode.objectChanged);
    assert.match(changed.message, /s3:\/\/bucket\/model.bin was overwritten during the download/);
    assert.equal((s3ReadErrorOf(originStatus(403), spec) as LacewingError).code, ErrorCode.objectAccessDenied);
    assert.equal((s3ReadErrorOf(originStatus(404), spec) as LacewingError).code, ErrorCode.objectNotFound);
    const other = originStatus(500);
    assert.equal(s3ReadErrorOf(other, spec), other);
  });
});

describe("s3:// download specs", () => {
  it("carry the access and the pinned version, and the version is part of the task id", () => {
    const withAccess = downloadSpecOf(
      create(DownloadSchema, {
        url: "s3://bucket/model.bin",
        sourceVersion: '"e1"',
        objectStorage: { accessKeyId: "AK", secretAccessKey: "SK", endpoint: "http://127.0.0.1:9000", forcePathStyle: true },
      }),
    );
    assert.equal(withAccess.objectStorage?.secretAccessKey, "SK");
    assert.equal(withAccess.objectStorage?.forcePathStyle, true);
    assert.equal(taskIdOfSpec(withAccess), taskIdOfSpec(spec), "credentials are not part of the task id");
    assert.notEqual(taskIdOfSpec({ ...spec, sourceVersion: '"e2"' }), taskIdOfSpec(spec));
  });

  it("refuse a malformed s3 URL and an endpoint that is not http(s) or holds credentials", () => {
    assert.throws(() => downloadSpecOf(create(DownloadSchema, { url: "s3://bucket" })), /the key is missing/);
    assert.throws(
      () => downloadSpecOf(create(DownloadSchema, { url: "s3://bucket/k", objectStorage: { endpoint: "file:///etc" } })),
      /must be an http or https URL/,
    );
    assert.throws(
      () => downloadSpecOf(create(DownloadSchema, { url: "s3://bucket/k", objectStorage: { endpoint: "http://u:p@h" } })),
      /must not hold credentials/,
    );
  });
});
