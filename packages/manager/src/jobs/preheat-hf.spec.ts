import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { taskIdOf } from "@lacewing/common";
import { TestHub } from "@lacewing/sources/testing";
import { managerClient } from "../testing/pki.js";
import { FakeScheduler } from "../testing/fake-scheduler.js";
import { isFinished, startManager, type ManagerUnderTest } from "../testing/harness.js";

const JOB_TOKEN = "hf_job_token_value";
const MANAGER_TOKEN = "hf_manager_token_value";

describe("preheat of hf:// files", () => {
  let hub: TestHub;
  let scheduler: FakeScheduler;
  let m: ManagerUnderTest;
  let commit: string;

  before(async () => {
    // The hub accepts one token; each test says which of the two it expects to reach it.
    hub = await TestHub.start({ token: JOB_TOKEN });
    hub.createRepo({ id: "owner/model", private: true });
    commit = hub.commit("owner/model", { "weights.bin": Buffer.alloc(4096, 3), "config.json": "{}" });
    scheduler = new FakeScheduler();
    await scheduler.start();
    m = await startManager({ scheduler: scheduler.address }, { hubEnv: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: MANAGER_TOKEN } });
  });
  after(async () => {
    await m.close();
    await scheduler.close();
    await hub.close();
  });

  async function preheat(args: Record<string, unknown>) {
    const created = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", ...args } });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    return m.waitForJob(created.body["id"] as string, isFinished);
  }

  it("triggers the resolve URL of the commit main points at, with the job's Authorization, under the id a later dfget computes", async () => {
    const before = scheduler.triggers.length;
    const job = await preheat({ url: "hf://owner/model/weights.bin", headers: { Authorization: `Bearer ${JOB_TOKEN}` } });
    assert.equal(job.state, "succeeded", job.error);
    const resolveUrl = `${hub.endpoint}/owner/model/resolve/${commit}/weights.bin`;
    const call = scheduler.triggers[before];
    assert.equal(call?.request.download?.url, resolveUrl);
    assert.equal(call?.request.download?.requestHeaders["Authorization"], `Bearer ${JOB_TOKEN}`);
    assert.equal(job.tasks[0]?.taskId, taskIdOf({ url: resolveUrl }));
    assert.equal(job.tasks[0]?.url, resolveUrl);
    // The view names the hf:// URL as given and hides the header; neither view nor logs hold the token.
    const view = await m.request("GET", `/api/v1/jobs/${job.id}`);
    assert.deepEqual((view.body["args"] as { urls: string[] }).urls, ["hf://owner/model/weights.bin"]);
    assert.doesNotMatch(JSON.stringify(view.body), new RegExp(JOB_TOKEN));
    assert.doesNotMatch(m.logs(), new RegExp(`${JOB_TOKEN}|${MANAGER_TOKEN}`));
  });

  it("does the same over gRPC", async () => {
    const client = managerClient(m.manager.grpcPort);
    const metadata = { authorization: "Bearer secret-token" };
    try {
      const job = await client.createJob(
        { type: "preheat", args: { type: "file", urls: [`hf://owner/model/config.json@${commit}`], headers: { Authorization: `Bearer ${JOB_TOKEN}` } } },
        { metadata },
      );
      assert.deepEqual(job.args?.urls, [`hf://owner/model/config.json@${commit}`]);
      assert.deepEqual(job.args?.headers, { Authorization: "[redacted]" });
      const done = await m.waitForJob(job.id, isFinished);
      assert.equal(done.state, "succeeded", done.error);
      assert.equal(done.tasks[0]?.taskId, taskIdOf({ url: `${hub.endpoint}/owner/model/resolve/${commit}/config.json` }));
    } finally {
      client.close();
    }
  });

  it("falls back to the manager's HF_TOKEN when the job names no Authorization (here refused by the hub: the job fails saying so)", async () => {
    const job = await preheat({ url: "hf://owner/model/weights.bin" });
    assert.equal(job.state, "failed");
    assert.match(job.error, /refused the token/);
    assert.doesNotMatch(job.error, new RegExp(MANAGER_TOKEN));
  });

  it("fails a job whose revision or file does not exist, with the hub's reason", async () => {
    const auth = { headers: { Authorization: `Bearer ${JOB_TOKEN}` } };
    assert.match((await preheat({ url: "hf://owner/model/weights.bin@v404", ...auth })).error, /revision "v404" not found/);
    assert.match((await preheat({ url: "hf://owner/model/none.bin", ...auth })).error, /"none.bin" not found/);
  });

  it("refuses a malformed hf:// URL, or one in an image preheat, with 400 naming the field", async () => {
    const bad = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: "hf://owner" } });
    assert.equal(bad.status, 400);
    assert.equal((bad.body["error"] as { field: string }).field, "args.url");
    const image = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "image", url: "hf://owner/model/weights.bin" } });
    assert.equal(image.status, 400);
    assert.match((image.body["error"] as { message: string }).message, /manifest URL/);
  });
});
