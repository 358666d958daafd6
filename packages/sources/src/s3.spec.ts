import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveS3Access, s3SettingsOf } from "./s3.js";

describe("s3SettingsOf", () => {
  it("reads the AWS conventions: AWS_REGION before AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL, AWS_S3_FORCE_PATH_STYLE", () => {
    assert.deepEqual(s3SettingsOf({}), { region: "", endpoint: "", forcePathStyle: false });
    assert.deepEqual(s3SettingsOf({ AWS_DEFAULT_REGION: "eu-west-1", AWS_ENDPOINT_URL: "http://all", AWS_S3_FORCE_PATH_STYLE: "TRUE" }), {
      region: "eu-west-1",
      endpoint: "http://all",
      forcePathStyle: true,
    });
    assert.deepEqual(
      s3SettingsOf({
        AWS_REGION: "us-west-2",
        AWS_DEFAULT_REGION: "eu-west-1",
        AWS_ENDPOINT_URL_S3: "http://s3",
        AWS_ENDPOINT_URL: "http://all",
        AWS_S3_FORCE_PATH_STYLE: "no",
      }),
      { region: "us-west-2", endpoint: "http://s3", forcePathStyle: false },
    );
  });
});

describe("resolveS3Access", () => {
  it("takes static credentials from the environment, session token included", async () => {
    const access = await resolveS3Access({ AWS_ACCESS_KEY_ID: "AK", AWS_SECRET_ACCESS_KEY: "SK", AWS_SESSION_TOKEN: "ST", HOME: "/nonexistent" });
    assert.equal(access.accessKeyId, "AK");
    assert.equal(access.secretAccessKey, "SK");
    assert.equal(access.sessionToken, "ST");
  });

  it("leaves the credentials empty when the caller has none, so the fetching daemon's own chain decides", async () => {
    const access = await resolveS3Access({ HOME: "/nonexistent" }, { forcePathStyle: true });
    assert.deepEqual(access, { region: "", endpoint: "", forcePathStyle: true, accessKeyId: "", secretAccessKey: "", sessionToken: "" });
  });

  it("reads AWS_PROFILE's keys from the shared credentials file, and names a profile that gives none", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lw-aws-"));
    try {
      const credentials = join(dir, "credentials");
      await writeFile(
        credentials,
        "[default]\naws_access_key_id = DEF\naws_secret_access_key = DEFS\n[ci]\naws_access_key_id = CIK\naws_secret_access_key = CIS\n",
      );
      // The SDK's file provider reads these from the process's environment.
      const saved = { file: process.env["AWS_SHARED_CREDENTIALS_FILE"], config: process.env["AWS_CONFIG_FILE"] };
      process.env["AWS_SHARED_CREDENTIALS_FILE"] = credentials;
      process.env["AWS_CONFIG_FILE"] = join(dir, "config");
      try {
        const env = { AWS_SHARED_CREDENTIALS_FILE: credentials, HOME: dir };
        assert.equal((await resolveS3Access({ ...env, AWS_PROFILE: "ci" })).accessKeyId, "CIK");
        assert.equal((await resolveS3Access(env)).accessKeyId, "DEF");
        await assert.rejects(resolveS3Access({ ...env, AWS_PROFILE: "nope" }), /AWS_PROFILE "nope" gives no credentials/);
      } finally {
        for (const [name, value] of [
          ["AWS_SHARED_CREDENTIALS_FILE", saved.file],
          ["AWS_CONFIG_FILE", saved.config],
        ] as const)
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
