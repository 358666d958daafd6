import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { createClient, managerv1, schedulerv1, RpcError, GrpcStatus } from "@lacewing/api";
import { rendezvousPick, taskIdOf } from "@lacewing/common";
import { loadManagerConfig } from "./config.js";
import { startFakeRegistry, type FakeRegistry } from "./testing/fake-registry.js";
import { FakeScheduler, failed, succeeded, type RecordedTrigger } from "./testing/fake-scheduler.js";
import { isFinished, startManager, type ManagerUnderTest } from "./testing/harness.js";

describe("lacewing-manager in embedded mode (PGlite, in-process queue)", () => {
  let registry: FakeRegistry;
  let schedulerA: FakeScheduler;
  let schedulerB: FakeScheduler;
  let m: ManagerUnderTest;

  before(async () => {
    registry = await startFakeRegistry({ username: "alice", password: "s3cret-pass" });
    schedulerA = new FakeScheduler();
    schedulerB = new FakeScheduler();
    await schedulerA.start();
    await schedulerB.start();
    m = await startManager({ scheduler: `${schedulerA.address},${schedulerB.address}`, taskConcurrency: 1 });
  });

  after(async () => {
    await m.close();
    await Promise.all([schedulerA.close(), schedulerB.close(), registry.close()]);
  });

  const triggers = (): RecordedTrigger[] => [...schedulerA.triggers, ...schedulerB.triggers];

  it("preheats an image: token flow, platform manifest, one trigger per blob (config and layers) at its owning scheduler", async () => {
    const created = await m.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "image", url: registry.manifestUrl(), username: "alice", password: "s3cret-pass", headers: { "X-Trace": "t1" } },
    });
    assert.equal(created.status, 202);
    assert.equal(created.body["state"], "pending");
    const job = await m.waitForJob(created.body["id"] as string, isFinished);
    assert.equal(job.state, "succeeded", job.error);
    assert.deepEqual(job.progress, { done: 4, total: 4 });
    assert.deepEqual(
      job.tasks.map((t) => t.digest),
      [registry.amd64Config, ...registry.amd64Layers],
    );
    assert.ok(job.tasks.every((t) => t.state === "succeeded" && t.hosts.length === 1));

    // The token endpoint got the basic credentials and the challenge's scope.
    assert.equal(registry.tokenRequests[0]?.authorization, `Basic ${Buffer.from("alice:s3cret-pass").toString("base64")}`);
    assert.equal(registry.tokenRequests[0]?.scope, `repository:${registry.name}:pull`);

    const layerTriggers = triggers().filter((t) => [registry.amd64Config, ...registry.amd64Layers].includes(t.request.download?.digest ?? ""));
    assert.equal(layerTriggers.length, 4);
    for (const call of layerTriggers) {
      const download = call.request.download;
      assert.ok(download !== undefined);
      assert.equal(download.url, `${registry.origin}/v2/${registry.name}/blobs/${download.digest}`);
      assert.equal(download.requestHeaders["Authorization"], `Bearer ${registry.token}`);
      assert.equal(download.requestHeaders["X-Trace"], "t1");
      assert.equal(call.request.scope, schedulerv1.TriggerScope.SINGLE_SEED_PEER);
      assert.equal(call.request.wait, true);
      const owner = rendezvousPick(call.taskId, [schedulerA.address, schedulerB.address]);
      assert.ok((owner === schedulerA.address ? schedulerA : schedulerB).triggers.includes(call), "trigger went to the task's owner");
    }
  });

  it("uses the task id a later pull computes: same blob through the mirror (?ns=) or another registry host", async () => {
    const { body } = await m.request("GET", "/api/v1/jobs?state=succeeded");
    const job = (body["jobs"] as Array<{ tasks: Array<{ taskId: string; digest: string }> }>)[0];
    assert.ok(job !== undefined);
    for (const task of job.tasks) {
      const viaMirror = `${registry.origin}/v2/${registry.name}/blobs/${task.digest}?ns=${registry.host}`;
      const viaOtherRegistry = `https://mirror.example.com:5000/v2/other/app/blobs/${task.digest}`;
      assert.equal(task.taskId, taskIdOf({ url: viaMirror }));
      assert.equal(task.taskId, taskIdOf({ url: viaOtherRegistry }));
      assert.notEqual(task.taskId, taskIdOf({ url: `${registry.origin}/v2/${registry.name}/manifests/latest` }));
    }
  });

  it("never returns or logs the password or Authorization values", async () => {
    const created = await m.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "file", urls: ["http://files.example/a.bin"], password: "p4ss-word", username: "u", headers: { Authorization: "Bearer top-secret" } },
    });
    assert.equal(created.status, 202);
    const job = await m.waitForJob(created.body["id"] as string, isFinished);
    assert.equal(job.args["password"], "[redacted]");
    assert.deepEqual(job.args["headers"], { Authorization: "[redacted]" });
    // The job still ran with the real header.
    const call = triggers().find((t) => t.request.download?.url === "http://files.example/a.bin");
    assert.equal(call?.request.download?.requestHeaders["Authorization"], "Bearer top-secret");
    const listed = JSON.stringify((await m.request("GET", "/api/v1/jobs?perPage=100")).body);
    const logs = m.logs();
    assert.match(logs, /job created/);
    for (const secret of ["p4ss-word", "top-secret", "s3cret-pass", registry.token]) {
      assert.ok(!listed.includes(secret), `API leaked ${secret}`);
      assert.ok(!logs.includes(secret), `logs leaked ${secret}`);
    }
  });

  it("preheats a file list: one task per distinct task id, with the tag, application and filtered parameters a later dfget uses", async () => {
    const urls = ["http://files.example/f1.bin?sig=a&v=1", "http://files.example/f2.bin", "http://files.example/f1.bin?v=1&sig=b&token=x"];
    const idArgs = { tag: "v7", application: "trainer", filteredQueryParams: ["token"] };
    const created = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", urls, ...idArgs, scope: "all_peers" } });
    assert.equal(created.status, 202);
    const job = await m.waitForJob(created.body["id"] as string, isFinished);
    assert.equal(job.state, "succeeded", job.error);
    // f1 twice: `sig` is filtered by default and `token` by the job, so both URLs are one task.
    assert.deepEqual(
      job.tasks.map((t) => t.url),
      [urls[0], urls[1]],
    );
    assert.deepEqual(
      job.tasks.map((t) => t.taskId),
      [taskIdOf({ url: "http://files.example/f1.bin?v=1", ...idArgs }), taskIdOf({ url: "http://files.example/f2.bin", ...idArgs })],
    );
    assert.notEqual(job.tasks[0]?.taskId, taskIdOf({ url: "http://files.example/f1.bin?v=1" }), "tag and application are part of the id");
    const calls = triggers().filter((t) => t.request.download?.url.startsWith("http://files.example/f"));
    assert.equal(calls.length, 2);
    for (const call of calls) {
      assert.equal(call.request.scope, schedulerv1.TriggerScope.ALL_PEERS);
      assert.equal(call.request.download?.tag, "v7");
      assert.equal(call.request.download?.application, "trainer");
      assert.deepEqual(call.request.download?.filteredQueryParams, ["token"]);
      assert.equal(call.taskId, job.tasks.find((t) => t.url === call.request.download?.url)?.taskId, "the scheduler computes the same id");
    }
  });

  it("triggers the blobs of a long preheat with a registry token that is still fresh, not the one the manifest was read with", async (t) => {
    const shortLived = await startFakeRegistry({ tokenTtlSeconds: 1, rotateTokens: true });
    const respond = schedulerA.respond;
    // The token each trigger carried, in the order the triggers arrived, and its age then.
    const carried: Array<{ token: string; ageMs: number }> = [];
    // Each blob takes 600 ms to "download" (one at a time), so the last trigger comes at least 1.8 s after the first.
    const slow = async (call: RecordedTrigger): Promise<ReturnType<typeof succeeded>> => {
      const token = /^Bearer (.+)$/.exec(call.request.download?.requestHeaders["Authorization"] ?? "")?.[1] ?? "";
      carried.push({ token, ageMs: Date.now() - (shortLived.tokenIssuedAt.get(token) ?? 0) });
      await sleep(600);
      return succeeded(call.taskId);
    };
    schedulerA.respond = schedulerB.respond = slow;
    try {
      const created = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "image", url: shortLived.manifestUrl() } });
      const job = await m.waitForJob(created.body["id"] as string, isFinished);
      assert.equal(job.state, "succeeded", job.error);
      t.diagnostic(`token ages at trigger time: ${carried.map((c) => c.ageMs).join(", ")} ms`);
      assert.equal(carried.length, 4);
      assert.ok(carried.every((c) => shortLived.issuedTokens.includes(c.token)));
      // The first trigger's token is past its half-life by the last trigger: that one went out with a newer token.
      assert.notEqual(carried[3]?.token, carried[0]?.token);
      assert.ok(shortLived.issuedTokens.indexOf(carried[3]?.token ?? "") > shortLived.issuedTokens.indexOf(carried[0]?.token ?? ""));
    } finally {
      schedulerA.respond = schedulerB.respond = respond;
      await shortLived.close();
    }
  });

  it("records every task when one layer fails: the job fails, the others succeed", async () => {
    const bad = registry.amd64Layers[1];
    const respond = schedulerA.respond;
    const failing = (call: RecordedTrigger): Promise<ReturnType<typeof succeeded>> =>
      Promise.resolve(call.request.download?.digest === bad ? failed(call.taskId, "origin returned 500") : succeeded(call.taskId));
    schedulerA.respond = schedulerB.respond = failing;
    try {
      const created = await m.request("POST", "/api/v1/jobs", {
        type: "preheat",
        args: { type: "image", url: registry.manifestUrl(), username: "alice", password: "s3cret-pass" },
      });
      const job = await m.waitForJob(created.body["id"] as string, isFinished);
      assert.equal(job.state, "failed");
      assert.equal(job.error, "1 of 4 tasks failed");
      assert.deepEqual(
        job.tasks.map((t) => t.state),
        ["succeeded", "succeeded", "failed", "succeeded"],
      );
      assert.match(job.tasks[2]?.error ?? "", /origin returned 500/);
    } finally {
      schedulerA.respond = schedulerB.respond = respond;
    }
  });

  it("cancels a running job: the held trigger is abandoned and no new task is triggered", async () => {
    const urls = ["http://files.example/c1", "http://files.example/c2", "http://files.example/c3"];
    const respond = schedulerA.respond;
    const holding = (_call: RecordedTrigger, signal: AbortSignal): Promise<never> =>
      new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
    schedulerA.respond = schedulerB.respond = holding;
    try {
      const firstTrigger = Promise.race([once(schedulerA, "trigger"), once(schedulerB, "trigger")]);
      const created = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", urls } });
      await firstTrigger;
      const cancelled = await m.request("DELETE", `/api/v1/jobs/${created.body["id"] as string}`);
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body["state"], "cancelled");
      // Nothing to await for "no further trigger": give a triggered next task time to show up.
      await sleep(300);
      assert.equal(triggers().filter((t) => urls.includes(t.request.download?.url ?? "")).length, 1);
      const job = await m.waitForJob(created.body["id"] as string, isFinished);
      assert.equal(job.state, "cancelled");
      // Cancelling twice is harmless.
      assert.equal((await m.request("DELETE", `/api/v1/jobs/${job.id}`)).body["state"], "cancelled");
    } finally {
      schedulerA.respond = schedulerB.respond = respond;
    }
  });

  it("rejects bad input with 400 naming the field", async () => {
    const cases: Array<[unknown, string]> = [
      [{ type: "preheat", args: { type: "image" } }, "args.url"],
      [{ type: "warmup", args: { type: "file", url: "http://x/y" } }, "type"],
      [{ type: "preheat", args: { type: "file", url: "ftp://x/y" } }, "args.url"],
      [{ type: "preheat", args: { type: "image", url: "http://registry/v2/app/blobs/sha256:00" } }, "args.url"],
      [{ type: "preheat", args: { type: "file", url: "http://x/y", scope: "everyone" } }, "args.scope"],
      [{ type: "preheat", args: { type: "file", urls: "http://x/y" } }, "args.urls"],
      [{ type: "preheat", args: { type: "file", url: "http://x/y", headers: { a: 1 } } }, "args.headers"],
      [{ type: "preheat", args: { type: "file", url: "http://x/y", scopes: "all_peers" } }, "args.scopes"],
      [{ type: "preheat", args: { type: "file", url: "http://x/y" }, priority: 1 }, "priority"],
      [{ type: "preheat", args: { type: "file", url: "http://x/y", filteredQueryParams: "sig" } }, "args.filteredQueryParams"],
      [{ type: "preheat", args: { type: "image", url: "http://registry/v2/app/manifests/v1", platform: "amd64" } }, "args.platform"],
      [{ type: "preheat", args: { type: "image", urls: ["http://r/v2/a/manifests/1", "http://r/v2/b/manifests/1"] } }, "args.urls"],
      [{ type: "preheat", args: { type: "file", url: "http://x/y", tag: 7 } }, "args.tag"],
      [{ type: "preheat", args: "file" }, "args"],
      [[], "body"],
    ];
    for (const [body, field] of cases) {
      const response = await m.request("POST", "/api/v1/jobs", body);
      assert.equal(response.status, 400, JSON.stringify(body));
      const error = response.body["error"] as { code: string; field: string; message: string };
      assert.equal(error.field, field, JSON.stringify(body));
      assert.equal(error.code, "LW_ERR_MANAGER_INVALID_ARGUMENT");
    }
    const notJson = await fetch(`${m.baseUrl}/api/v1/jobs`, { method: "POST", headers: { authorization: "Bearer secret-token" }, body: "{" });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { error: { field: string } }).error.field, "body");
    const badPage = await m.request("GET", "/api/v1/jobs?page=0");
    assert.equal((badPage.body["error"] as { field: string }).field, "page");
    assert.equal((await m.request("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000")).status, 404);
  });

  it("pages the job list and filters by state", async () => {
    const page1 = await m.request("GET", "/api/v1/jobs?perPage=2&page=1");
    const page2 = await m.request("GET", "/api/v1/jobs?perPage=2&page=2");
    const total = page1.body["total"] as number;
    assert.ok(total >= 4);
    assert.equal((page1.body["jobs"] as unknown[]).length, 2);
    const ids1 = (page1.body["jobs"] as Array<{ id: string }>).map((j) => j.id);
    const ids2 = (page2.body["jobs"] as Array<{ id: string }>).map((j) => j.id);
    assert.equal(new Set([...ids1, ...ids2]).size, 4);
    const failedJobs = await m.request("GET", "/api/v1/jobs?state=failed&type=preheat");
    assert.ok((failedJobs.body["jobs"] as Array<{ state: string }>).every((j) => j.state === "failed"));
    assert.ok((failedJobs.body["total"] as number) >= 1);
  });

  it("requires the bearer token on the API but not on probes and metrics", async () => {
    assert.equal((await m.request("GET", "/api/v1/jobs", undefined, null)).status, 401);
    const wrong = await m.request("GET", "/api/v1/jobs", undefined, "nope");
    assert.equal(wrong.status, 401);
    assert.equal((wrong.body["error"] as { code: string }).code, "LW_ERR_MANAGER_UNAUTHENTICATED");
    assert.equal((await m.request("GET", "/healthz", undefined, null)).status, 200);
    assert.equal((await m.request("GET", "/readyz", undefined, null)).status, 200);
    const metrics = await fetch(`${m.baseUrl}/metrics`);
    const text = await metrics.text();
    assert.match(text, /lacewing_manager_jobs\{state="succeeded"\} [1-9]/);
    assert.match(text, /lacewing_manager_jobs_total\{state="cancelled"\} 1/);

    const client = createClient(managerv1.Manager, `127.0.0.1:${m.manager.grpcPort}`);
    try {
      await assert.rejects(client.listJobs({}), (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });

  it("offers the same operations over gRPC", async () => {
    const client = createClient(managerv1.Manager, `127.0.0.1:${m.manager.grpcPort}`);
    const metadata = { authorization: "Bearer secret-token" };
    try {
      const job = await client.createJob(
        { type: "preheat", args: { type: "file", urls: ["http://files.example/grpc.bin"], password: "pw-grpc" } },
        { metadata },
      );
      assert.equal(job.state, "pending");
      assert.equal(job.args?.password, "[redacted]");
      await m.waitForJob(job.id, isFinished);
      const got = await client.getJob({ id: job.id }, { metadata });
      assert.equal(got.state, "succeeded");
      assert.equal(got.tasks[0]?.taskId, taskIdOf({ url: "http://files.example/grpc.bin" }));
      await assert.rejects(
        client.createJob({ type: "preheat", args: { type: "file" } }, { metadata }),
        (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.INVALID_ARGUMENT && /args\.url/.test(err.message),
      );
      const clusters = await client.listClusters({}, { metadata });
      assert.equal(clusters.clusters[0]?.name, "default");
    } finally {
      client.close();
    }
  });

  it("lists hosts, seed peers, schedulers and clusters, reporting an unreachable scheduler", async () => {
    const hosts = await m.request("GET", "/api/v1/hosts");
    assert.equal((hosts.body["hosts"] as unknown[]).length, 4); // two hosts from each fake scheduler
    const seeds = await m.request("GET", "/api/v1/seed-peers");
    assert.ok((seeds.body["hosts"] as Array<{ type: string }>).every((h) => h.type === "seed"));
    assert.equal((seeds.body["hosts"] as unknown[]).length, 2);
    const clusters = await m.request("GET", "/api/v1/clusters");
    assert.deepEqual((clusters.body["clusters"] as Array<{ schedulerAddresses: string[] }>)[0]?.schedulerAddresses, [schedulerA.address, schedulerB.address]);

    await schedulerB.close();
    const schedulers = await m.request("GET", "/api/v1/schedulers");
    const statuses = schedulers.body["schedulers"] as Array<{ address: string; reachable: boolean }>;
    // Listed by resolved endpoint (sorted), the list tasks are hashed over.
    assert.deepEqual(Object.fromEntries(statuses.map((s) => [s.address, s.reachable])), { [schedulerA.address]: true, [schedulerB.address]: false });
    const partial = await m.request("GET", "/api/v1/hosts");
    assert.equal((partial.body["hosts"] as unknown[]).length, 2);
    assert.equal((partial.body["unreachable"] as unknown[]).length, 1);
  });
});

describe("lacewing-manager config", () => {
  it("refuses to listen beyond loopback without a token, naming the key", () => {
    assert.throws(() => loadManagerConfig({ flags: { listen: "0.0.0.0:8080" } }), /token is required when listen/);
    assert.throws(() => loadManagerConfig({ flags: { grpcListen: "10.1.2.3:8081" } }), /token is required when grpcListen/);
    assert.doesNotThrow(() => loadManagerConfig({ flags: { listen: "0.0.0.0:8080", grpcListen: "0.0.0.0:8081", token: "t" } }));
  });
});

describe("lacewing-manager restart in embedded mode", () => {
  it("resumes a job interrupted mid-trigger from the on-disk database", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "lw-manager-"));
    const registry = await startFakeRegistry();
    const scheduler = new FakeScheduler();
    await scheduler.start();
    const held = registry.amd64Layers[1];
    scheduler.respond = (call, signal) =>
      call.request.download?.digest === held
        ? new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }))
        : Promise.resolve(succeeded(call.taskId));
    const flags = { scheduler: scheduler.address, dataDir, taskConcurrency: 1 };
    let first: ManagerUnderTest | undefined = await startManager(flags);
    let second: ManagerUnderTest | undefined;
    try {
      const heldTrigger = new Promise<void>((resolve) =>
        scheduler.on("trigger", (call: RecordedTrigger) => call.request.download?.digest === held && resolve()),
      );
      const created = await first.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "image", url: registry.manifestUrl() } });
      await heldTrigger;
      await first.close();
      first = undefined;

      scheduler.respond = (call) => Promise.resolve(succeeded(call.taskId));
      second = await startManager(flags);
      const job = await second.waitForJob(created.body["id"] as string, isFinished);
      assert.equal(job.state, "succeeded", job.error);
      assert.deepEqual(
        job.tasks.map((t) => t.state),
        ["succeeded", "succeeded", "succeeded", "succeeded"],
      );
      const count = (digest: string | undefined): number => scheduler.triggers.filter((t) => t.request.download?.digest === digest).length;
      assert.equal(count(registry.amd64Layers[0]), 1, "a finished layer is not triggered again");
      assert.equal(count(held), 2);
    } finally {
      await first?.close();
      await second?.close();
      await Promise.all([scheduler.close(), registry.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
