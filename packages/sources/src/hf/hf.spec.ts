import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ErrorCode, LacewingError } from "@lacewing/common";
import { TestHub } from "../testing/test-hub.js";
import { hubOf } from "./hub.js";
import { listHf } from "./list-hf.js";
import { hfDownloadOf, resolveHfFile } from "./resolve-hf-file.js";

const TOKEN = "hf_test_token";
const big = Buffer.alloc(4096, 7);
const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function hasCode(code: string, message?: RegExp) {
  return (err: unknown) =>
    err instanceof LacewingError && err.code === code && (message === undefined || message.test(err.message)) && !err.message.includes(TOKEN);
}

describe("hf:// against the test hub", () => {
  let hub: TestHub;
  let env: NodeJS.ProcessEnv;
  let first: string;
  let second: string;
  before(async () => {
    hub = await TestHub.start({ token: TOKEN, pageSize: 2 });
    env = { HF_ENDPOINT: hub.endpoint };
    hub.createRepo({ id: "owner/model" });
    first = hub.commit("owner/model", { "config.json": '{"a":1}', "weights/model.bin": big, "weights/extra/b.bin": "b", "README.md": "# m" });
    second = hub.commit("owner/model", { "config.json": '{"a":2}', "weights/model.bin": big });
    hub.createRepo({ id: "owner/secret", private: true });
    hub.commit("owner/secret", { "x.bin": big });
    hub.createRepo({ type: "dataset", id: "owner/data" });
    hub.commit("owner/data", { "train/a.parquet": "aaaa", "train/b.parquet": big, "test/c.parquet": "c" }, { type: "dataset" });
  });
  after(() => hub.close());

  describe("resolveHfFile", () => {
    it("pins a moving revision to the commit main points at, in the resolve URL the task id is made from", async () => {
      const file = await resolveHfFile("hf://owner/model/config.json", { env });
      assert.equal(file.revision, second);
      assert.equal(file.url, `${hub.endpoint}/owner/model/resolve/${second}/config.json`);
      assert.equal(file.pinnedUrl, `hf://owner/model/config.json@${second}`);
      assert.equal(file.size, 7);
      assert.deepEqual(file.headers, {});
      assert.equal(file.digest, "", "a small file's ETag is a git blob id, not a content digest");
    });

    it("keeps a pinned commit, and reads an LFS file's size and sha256 from the redirect without following it", async () => {
      hub.resetStats();
      const file = await resolveHfFile(`hf://owner/model/weights/model.bin@${first}`, { env });
      assert.equal(file.revision, first);
      assert.equal(file.url, `${hub.endpoint}/owner/model/resolve/${first}/weights/model.bin`);
      assert.equal(file.size, big.byteLength);
      assert.equal(file.version, sha256(big));
      assert.equal(file.digest, `sha256:${sha256(big)}`, "an LFS file's oid is its content's SHA-256, for the daemon to verify");
      assert.equal(hub.stats.storageRequests, 0, "the storage host is the daemon's business");
      assert.equal(hub.stats.requests["resolve"], 1, "one HEAD, no revision lookup");
    });

    it("prefixes datasets/ in the file URL", async () => {
      const file = await resolveHfFile("hf://datasets/owner/data/train/a.parquet@main", { env });
      assert.match(file.url, /\/datasets\/owner\/data\/resolve\/[0-9a-f]{40}\/train\/a\.parquet$/);
    });

    it("sends HF_TOKEN (or the legacy HUGGING_FACE_HUB_TOKEN) as a Bearer token and hands it on for the daemon", async () => {
      for (const name of ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]) {
        const file = await resolveHfFile("hf://owner/secret/x.bin", { env: { ...env, [name]: TOKEN } });
        assert.deepEqual(file.headers, { Authorization: `Bearer ${TOKEN}` }, name);
      }
      assert.equal(hubOf({ env: { HF_TOKEN: "new", HUGGING_FACE_HUB_TOKEN: "old" } }).authorization, "Bearer new");
    });

    it("reads the login token file only when asked, and only when no variable names a token", async () => {
      const dir = await mkdtemp(join(tmpdir(), "hf-home-"));
      try {
        await writeFile(join(dir, "token"), `${TOKEN}\n`);
        assert.equal(hubOf({ env: { HF_HOME: dir }, tokenFile: true }).authorization, `Bearer ${TOKEN}`);
        assert.equal(hubOf({ env: { HF_HOME: dir } }).authorization, undefined, "a server does not read it");
        assert.equal(hubOf({ env: { HF_HOME: dir, HF_TOKEN: "env" }, tokenFile: true }).authorization, "Bearer env");
        assert.equal(hubOf({ env: { HF_TOKEN_PATH: join(dir, "token") }, tokenFile: true }).authorization, `Bearer ${TOKEN}`);
        assert.equal(hubOf({ env: { HF_HOME: join(dir, "none") }, tokenFile: true }).authorization, undefined);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("fails with the Hub's reason: missing repo, private repo without a token, wrong token, missing revision, missing file", async () => {
      await assert.rejects(resolveHfFile("hf://owner/nope/x.bin", { env }), hasCode(ErrorCode.hubRepoNotFound, /needs HF_TOKEN/));
      await assert.rejects(resolveHfFile("hf://owner/secret/x.bin", { env }), hasCode(ErrorCode.hubRepoNotFound));
      await assert.rejects(resolveHfFile("hf://owner/secret/x.bin", { env: { ...env, HF_TOKEN: "wrong" } }), hasCode(ErrorCode.hubAuth, /refused the token/));
      await assert.rejects(resolveHfFile("hf://owner/model/config.json@v9", { env }), hasCode(ErrorCode.hubRevisionNotFound, /"v9"/));
      await assert.rejects(resolveHfFile("hf://owner/model/missing.json", { env }), hasCode(ErrorCode.hubEntryNotFound, /"missing.json"/));
      await assert.rejects(resolveHfFile("hf://owner/model", { env }), hasCode(ErrorCode.badUrl, /whole repository/));
    });

    it("says the hub is unreachable rather than hanging or crashing", async () => {
      await assert.rejects(
        resolveHfFile("hf://owner/model/config.json", { env: { HF_ENDPOINT: "http://127.0.0.1:1" } }),
        hasCode(ErrorCode.hubUnavailable, /cannot reach/),
      );
    });

    it("refuses an HF_ENDPOINT that is not an http(s) URL as a config error naming it", () => {
      assert.throws(() => hubOf({ env: { HF_ENDPOINT: "ftp://x" } }), hasCode(ErrorCode.config, /HF_ENDPOINT/));
    });
  });

  describe("hfDownloadOf", () => {
    it("makes the download of a pinned hf:// file without asking the hub, and refuses one that is not pinned", () => {
      hub.resetStats();
      assert.deepEqual(hfDownloadOf(`hf://datasets/owner/data/a b.txt@${first}`, { env: { ...env, HF_TOKEN: TOKEN } }), {
        url: `${hub.endpoint}/datasets/owner/data/resolve/${first}/a%20b.txt`,
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      assert.deepEqual(hub.stats.requests, {});
      assert.throws(() => hfDownloadOf("hf://owner/model/config.json@main", { env }), hasCode(ErrorCode.badUrl, /pinned/));
      assert.throws(() => hfDownloadOf(`hf://owner/model@${first}`, { env }), hasCode(ErrorCode.badUrl));
    });
  });

  describe("listHf", () => {
    it("lists every file of a repo at the commit main points at, following pages, with keys, pinned URLs and versions", async () => {
      hub.resetStats();
      const files = await collect(listHf("hf://owner/model", { env }));
      assert.deepEqual(
        files.map((f) => [f.key, f.url, f.size]),
        [
          ["config.json", `hf://owner/model/config.json@${second}`, 7],
          ["weights/model.bin", `hf://owner/model/weights/model.bin@${second}`, big.byteLength],
        ],
      );
      assert.equal(files[1]?.version, sha256(big), "an LFS file's version is its sha256");
      assert.match(files[0]?.version ?? "", /^[0-9a-f]{40}$/, "a small file's version is its blob id");
      assert.equal(hub.stats.requests["revision"], 1);
      assert.equal(hub.stats.requests["tree"], 2, "three entries at two a page");
    });

    it("lists a directory of a dataset at a pinned commit without asking for the revision, keys relative to it", async () => {
      const root = (await collect(listHf("hf://datasets/owner/data/train", { env })))[0]?.url.split("@")[1] ?? "";
      hub.resetStats();
      const files = await collect(listHf(`hf://datasets/owner/data/train@${root}`, { env }));
      assert.deepEqual(
        files.map((f) => f.key),
        ["a.parquet", "b.parquet"],
      );
      assert.equal(files[0]?.url, `hf://datasets/owner/data/train/a.parquet@${root}`);
      assert.equal(hub.stats.requests["revision"], undefined);
    });

    it("lists an old commit's files, not main's", async () => {
      const files = await collect(listHf(`hf://owner/model@${first}`, { env }));
      assert.deepEqual(
        files.map((f) => f.key),
        ["README.md", "config.json", "weights/extra/b.bin", "weights/model.bin"],
      );
    });

    it("fails on a missing repo, revision or directory and on a wrong token", async () => {
      await assert.rejects(collect(listHf("hf://owner/nope", { env })), hasCode(ErrorCode.hubRepoNotFound));
      await assert.rejects(collect(listHf("hf://owner/model@nope", { env })), hasCode(ErrorCode.hubRevisionNotFound));
      await assert.rejects(collect(listHf("hf://owner/model/nodir", { env })), hasCode(ErrorCode.hubEntryNotFound));
      await assert.rejects(collect(listHf("hf://owner/secret", { env: { ...env, HF_TOKEN: "bad" } })), hasCode(ErrorCode.hubAuth));
      const files = await collect(listHf("hf://owner/secret", { env: { ...env, HF_TOKEN: TOKEN } }));
      assert.equal(files.length, 1);
    });
  });
});
