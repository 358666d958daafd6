import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Knex } from "knex";
import type { PreheatArgs } from "../jobs/job.js";
import { splitSecrets } from "../jobs/job-args.js";
import { openDatabase } from "./database.js";
import { JobStore } from "./job-store.js";
import { migrationSource } from "./migrations.js";

const ARGS: PreheatArgs = {
  type: "file",
  urls: ["https://robot:url-pass@files.example/a.bin?X-Amz-Signature=sig-value&v=1"],
  tag: "",
  application: "",
  filteredQueryParams: [],
  headers: { "X-Api-Key": "api-key-value" },
  username: "robot",
  password: "p4ss",
  platform: "linux/amd64",
  scope: "single_seed_peer",
};

describe("JobStore (embedded PGlite)", () => {
  let db: Knex;
  let store: JobStore;
  const secretsOf = async (id: string): Promise<unknown> => ((await db("jobs").where({ id }).first("secrets")) as { secrets: unknown }).secrets;
  const createJob = async (): Promise<string> => {
    const { args, secrets } = splitSecrets(ARGS);
    return (await store.create("preheat", args, secrets)).id;
  };

  before(async () => {
    db = await openDatabase({ url: "", schema: "public", dataDir: "" });
    store = new JobStore(db);
  });
  after(async () => {
    await db.destroy();
  });

  it("stores the credentials apart, gives them back to the processor, and shows only redacted args", async () => {
    const id = await createJob();
    const row = (await db("jobs").where({ id }).first("args", "secrets")) as { args: PreheatArgs; secrets: unknown };
    assert.deepEqual(row.secrets, { password: "p4ss", headers: { "X-Api-Key": "api-key-value" }, urls: ARGS.urls });
    assert.ok(
      !JSON.stringify(row.args).includes("api-key-value") && !JSON.stringify(row.args).includes("url-pass") && !JSON.stringify(row.args).includes("sig-value"),
    );
    assert.deepEqual((await store.getWithSecrets(id)).args, ARGS);
    const shown = await store.get(id);
    assert.deepEqual(shown.args.urls, ["https://[redacted]@files.example/a.bin?X-Amz-Signature=[redacted]&v=1"]);
    assert.deepEqual(shown.args.headers, { "X-Api-Key": "[redacted]" });
  });

  it("keeps the credentials while a job runs and purges them when it succeeds or fails", async () => {
    for (const state of ["succeeded", "failed"] as const) {
      const id = await createJob();
      assert.equal(await store.markRunning(id), true);
      await store.saveTasks(id, []);
      assert.notDeepEqual(await secretsOf(id), {}, "a running job still needs its credentials");
      assert.equal(await store.finish(id, state, [], state === "failed" ? "1 of 1 tasks failed" : ""), true);
      assert.deepEqual(await secretsOf(id), {}, state);
    }
  });

  it("purges the credentials of a cancelled job", async () => {
    const id = await createJob();
    const { cancelled } = await store.cancel(id);
    assert.equal(cancelled, true);
    assert.deepEqual(await secretsOf(id), {});
  });

  it("shows rows stored before redaction covered URLs and every header, redacted", async () => {
    // As the manager stored them before: plain URL, non-credential header values in args.
    const id = "11111111-2222-4333-8444-555555555555";
    const now = new Date();
    const legacy = { ...ARGS, headers: { "X-Api-Key": "api-key-value", Authorization: "[redacted]" }, password: "[redacted]" };
    await db("jobs").insert({
      id,
      type: "preheat",
      state: "running",
      args: JSON.stringify(legacy),
      secrets: JSON.stringify({ password: "p4ss", headers: { Authorization: "Bearer t" } }),
      tasks: JSON.stringify([{ taskId: "t", url: ARGS.urls[0], digest: "", state: "pending", error: "", scheduler: "", hosts: [] }]),
      error: "",
      attempts: 1,
      created_at: now,
      updated_at: now,
    });
    const shown = JSON.stringify(await store.get(id));
    for (const secret of ["api-key-value", "url-pass", "sig-value", "p4ss"]) assert.ok(!shown.includes(secret), secret);
    // And the processor still gets what it ran with before.
    const { args } = await store.getWithSecrets(id);
    assert.deepEqual([args.urls, args.headers, args.password], [ARGS.urls, { "X-Api-Key": "api-key-value", Authorization: "Bearer t" }, "p4ss"]);
  });

  it("migration 0002 purges the credentials that final jobs kept before", async () => {
    const ids = { final: await createJob(), running: await createJob() };
    await db("jobs").where({ id: ids.final }).update({ state: "succeeded" });
    const migration = await migrationSource.getMigration("0002_purge_final_job_secrets");
    await migration.up(db);
    assert.deepEqual(await secretsOf(ids.final), {});
    assert.notDeepEqual(await secretsOf(ids.running), {});
  });
});
