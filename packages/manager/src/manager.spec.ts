import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { schedulerv1, RpcError, GrpcStatus } from "@lacewing/api";
import { managerClient } from "./testing/pki.js";
import { rendezvousPick, taskIdOf } from "@lacewing/common";
import { loadManagerConfig } from "./config.js";
import { openDatabase } from "./db/database.js";
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

  it("never returns or logs a credential: password, any header value, URL userinfo, signed query values; the seed peers still get them", async () => {
    const signedUrl =
      "https://robot:url-pass@files.example/a.bin?X-Amz-Signature=amz-sig-value&X-Goog-Signature=goog-sig-value&Signature=plain-sig-value&sig=azure-sig-value&session=own-param-value&v=1";
    const headers = { Authorization: "Bearer top-secret", "X-Api-Key": "api-key-value", "Private-Token": "gitlab-token-value" };
    const created = await m.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "file", urls: ["http://files.example/a.bin", signedUrl], password: "p4ss-word", username: "u", headers, filteredQueryParams: ["session"] },
    });
    assert.equal(created.status, 202);
    const redactedUrl =
      "https://[redacted]@files.example/a.bin?X-Amz-Signature=[redacted]&X-Goog-Signature=[redacted]&Signature=[redacted]&sig=[redacted]&session=[redacted]&v=1";
    assert.deepEqual((created.body["args"] as { urls: string[] }).urls, ["http://files.example/a.bin", redactedUrl]);
    const job = await m.waitForJob(created.body["id"] as string, isFinished);
    assert.equal(job.args["password"], "[redacted]");
    assert.deepEqual(job.args["headers"], { Authorization: "[redacted]", "X-Api-Key": "[redacted]", "Private-Token": "[redacted]" });
    assert.deepEqual(job.args["urls"], ["http://files.example/a.bin", redactedUrl]);
    assert.deepEqual(
      job.tasks.map((t) => t.url),
      ["http://files.example/a.bin", redactedUrl],
    );
    // The job still ran with the real URL and header values.
    const call = triggers().find((t) => t.request.download?.url === signedUrl);
    assert.deepEqual(call?.request.download?.requestHeaders, headers);
    assert.equal(
      triggers().find((t) => t.request.download?.url === "http://files.example/a.bin")?.request.download?.requestHeaders["X-Api-Key"],
      "api-key-value",
    );

    const listed = JSON.stringify((await m.request("GET", "/api/v1/jobs?perPage=100")).body);
    const got = JSON.stringify((await m.request("GET", `/api/v1/jobs/${job.id}`)).body);
    const client = managerClient(m.manager.grpcPort);
    let grpcViews: string;
    try {
      const metadata = { authorization: "Bearer secret-token" };
      const views = [await client.getJob({ id: job.id }, { metadata }), await client.listJobs({ perPage: 100 }, { metadata })];
      grpcViews = JSON.stringify(views, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
    } finally {
      client.close();
    }
    assert.ok(grpcViews.includes(redactedUrl), "the gRPC views show the redacted URL");
    const logs = m.logs();
    assert.match(logs, /job created/);
    const secrets = [
      "p4ss-word",
      "top-secret",
      "api-key-value",
      "gitlab-token-value",
      "url-pass",
      "robot:",
      "sig-value",
      "own-param-value",
      "s3cret-pass",
      registry.token,
    ];
    for (const secret of secrets) {
      for (const [where, text] of Object.entries({ "the job list": listed, "the job": got, "the gRPC views": grpcViews, "the logs": logs }))
        assert.ok(!text.includes(secret), `${where} leaked ${secret}`);
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
    // Shown with the signature redacted; the scheduler got the URL as given.
    assert.deepEqual(
      job.tasks.map((t) => t.url),
      ["http://files.example/f1.bin?sig=[redacted]&v=1", urls[1]],
    );
    assert.deepEqual(
      job.tasks.map((t) => t.taskId),
      [taskIdOf({ url: "http://files.example/f1.bin?v=1", ...idArgs }), taskIdOf({ url: "http://files.example/f2.bin", ...idArgs })],
    );
    assert.notEqual(job.tasks[0]?.taskId, taskIdOf({ url: "http://files.example/f1.bin?v=1" }), "tag and application are part of the id");
    const calls = triggers().filter((t) => t.request.download?.url.startsWith("http://files.example/f"));
    assert.equal(calls.length, 2);
    for (const call of calls) {
      assert.ok([urls[0], urls[1]].includes(call.request.download?.url ?? ""));
      assert.equal(call.request.scope, schedulerv1.TriggerScope.ALL_PEERS);
      assert.equal(call.request.download?.tag, "v7");
      assert.equal(call.request.download?.application, "trainer");
      assert.deepEqual(call.request.download?.filteredQueryParams, ["token"]);
      assert.equal(call.taskId, taskIdOf({ url: call.request.download?.url ?? "", ...idArgs }), "the scheduler computes the same id");
      assert.ok(job.tasks.some((t) => t.taskId === call.taskId));
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
      [{ type: "preheat", args: { type: "image", url: "https://robot:pw@registry/v2/app/manifests/v1" } }, "args.url"],
      [{ type: "preheat", args: { type: "file", url: "http://robot:pw@[not-a-host/f" } }, "args.url"],
      [{ type: "preheat", args: "file" }, "args"],
      [[], "body"],
    ];
    for (const [body, field] of cases) {
      const response = await m.request("POST", "/api/v1/jobs", body);
      assert.equal(response.status, 400, JSON.stringify(body));
      const error = response.body["error"] as { code: string; field: string; message: string };
      assert.equal(error.field, field, JSON.stringify(body));
      assert.equal(error.code, "LW_ERR_MANAGER_INVALID_ARGUMENT");
      assert.ok(!error.message.includes("pw@"), "the message does not quote a credential");
    }
    const notJson = await fetch(`${m.baseUrl}/api/v1/jobs`, {
      method: "POST",
      headers: { authorization: "Bearer secret-token", "content-type": "application/json" },
      body: "{",
    });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { error: { field: string } }).error.field, "body");
    const badPage = await m.request("GET", "/api/v1/jobs?page=0");
    assert.equal((badPage.body["error"] as { field: string }).field, "page");
    assert.equal((await m.request("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000")).status, 404);
  });

  it("answers 400, not 500, for a job id with bad percent-encoding or not in the UUID form", async () => {
    const cases: Array<[string, string, string]> = [
      ["GET", "/api/v1/jobs/%E0%A4%A", "path"],
      ["DELETE", "/api/v1/jobs/%E0%A4%A", "path"],
      ["GET", "/api/v1/jobs/not-a-job", "id"],
      ["DELETE", "/api/v1/jobs/not-a-job", "id"],
      ["GET", "/api/v1/jobs/00000000-0000-0000-0000-00000000000g", "id"],
      ["GET", `/api/v1/jobs/${encodeURIComponent("00000000-0000-0000-0000-000000000000' or '1'='1")}`, "id"],
    ];
    for (const [method, path, field] of cases) {
      const response = await m.request(method, path);
      assert.equal(response.status, 400, `${method} ${path}`);
      assert.deepEqual(response.body["error"], {
        code: "LW_ERR_MANAGER_INVALID_ARGUMENT",
        field,
        message: field === "path" ? "path: bad percent-encoding" : "id: must be a job id (a UUID)",
      });
    }
    // A request target URL cannot parse is a bad request too, not a crash of the manager.
    const socket = createConnection(m.manager.restPort, "127.0.0.1");
    socket.end("GET http://[/api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 400 [\s\S]*"field":"path"/);
    assert.equal((await m.request("GET", "/healthz")).status, 200, "the manager is still up");
    // Ids are matched in the form jobs have: an upper-case spelling of a real id finds it.
    const created = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: "http://files.example/upper-case-id" } });
    const id = created.body["id"] as string;
    assert.equal((await m.request("GET", `/api/v1/jobs/${id.toUpperCase()}`)).body["id"], id);
    await m.waitForJob(id, isFinished);
  });

  it("answers 415 to a body that is not declared as JSON (charset and other parameters allowed)", async () => {
    const body = JSON.stringify({ type: "preheat", args: { type: "file", url: "http://files.example/media-type" } });
    const auth = { authorization: "Bearer secret-token" };
    for (const contentType of ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", undefined]) {
      const headers = contentType === undefined ? auth : { ...auth, "content-type": contentType };
      for (const method of ["POST", "PUT", "PATCH"]) {
        const response = await m.raw(method, "/api/v1/jobs", headers, body);
        assert.equal(response.status, 415, `${method} ${contentType ?? "without a Content-Type"}`);
        const error = response.body["error"] as { code: string; field: string; message: string };
        assert.equal(error.code, "LW_ERR_MANAGER_UNSUPPORTED_MEDIA_TYPE");
        assert.equal(error.field, "body");
      }
    }
    const accepted = await m.raw("POST", "/api/v1/jobs", { ...auth, "content-type": "Application/JSON; charset=utf-8" }, body);
    assert.equal(accepted.status, 202);
    await m.waitForJob(accepted.body["id"] as string, isFinished);
  });

  it("refuses a request whose Origin is another site, in token mode too, and never sends CORS headers", async () => {
    const host = `127.0.0.1:${m.manager.restPort}`;
    const before = (await m.request("GET", "/api/v1/jobs")).body["total"];
    const body = JSON.stringify({ type: "preheat", args: { type: "file", url: "http://files.example/cross-site" } });
    // What a page on evil.example can send without a preflight: a text/plain POST.
    const crossSite = await m.raw("POST", "/api/v1/jobs", { host, origin: "https://evil.example", "content-type": "text/plain" }, body);
    assert.equal(crossSite.status, 403);
    assert.equal((crossSite.body["error"] as { code: string }).code, "LW_ERR_MANAGER_CROSS_ORIGIN");
    for (const origin of ["null", "http://127.0.0.1:1", `https://${host}.evil.example`, "file://"]) {
      assert.equal((await m.raw("GET", "/api/v1/jobs", { host, origin, authorization: "Bearer secret-token" })).status, 403, origin);
    }
    const preflight = await m.raw("OPTIONS", "/api/v1/jobs", {
      host,
      origin: "https://evil.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, authorization",
    });
    assert.equal(preflight.status, 403);
    assert.deepEqual(
      Object.keys(preflight.headers).filter((name) => name.startsWith("access-control-")),
      [],
    );
    assert.equal((await m.raw("GET", "/metrics", { host, origin: "https://evil.example" })).status, 403);
    assert.equal((await m.request("GET", "/api/v1/jobs")).body["total"], before, "no job was created");
    // The same origin (as a local tool might send) is fine.
    const sameOrigin = await m.raw("GET", "/api/v1/jobs", { host, origin: `http://${host}`, authorization: "Bearer secret-token" });
    assert.equal(sameOrigin.status, 200);
    assert.ok(Object.keys(sameOrigin.headers).every((name) => !name.startsWith("access-control-")));
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

    const client = managerClient(m.manager.grpcPort);
    try {
      await assert.rejects(client.listJobs({}), (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.UNAUTHENTICATED);
    } finally {
      client.close();
    }
    // A cluster member's certificate is not the manager's: the API refuses it even with the token.
    const member = managerClient(m.manager.grpcPort, "peer");
    try {
      await assert.rejects(
        member.listJobs({}, { metadata: { authorization: "Bearer secret-token" } }),
        (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.PERMISSION_DENIED,
      );
    } finally {
      member.close();
    }
  });

  it("offers the same operations over gRPC", async () => {
    const client = managerClient(m.manager.grpcPort);
    const metadata = { authorization: "Bearer secret-token" };
    try {
      const job = await client.createJob(
        {
          type: "preheat",
          args: { type: "file", urls: ["http://files.example/grpc.bin"], password: "pw-grpc", headers: { "X-Grpc-Key": "grpc-key-value" } },
        },
        { metadata },
      );
      assert.equal(job.state, "pending");
      assert.equal(job.args?.password, "[redacted]");
      assert.deepEqual(job.args?.headers, { "X-Grpc-Key": "[redacted]" });
      await m.waitForJob(job.id, isFinished);
      const got = await client.getJob({ id: job.id }, { metadata });
      assert.equal(got.state, "succeeded");
      assert.equal(got.tasks[0]?.taskId, taskIdOf({ url: "http://files.example/grpc.bin" }));
      await assert.rejects(
        client.createJob({ type: "preheat", args: { type: "file" } }, { metadata }),
        (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.INVALID_ARGUMENT && /args\.url/.test(err.message),
      );
      for (const id of ["not-a-job", "%E0%A4%A", ""]) {
        for (const call of [() => client.getJob({ id }, { metadata }), () => client.cancelJob({ id }, { metadata })])
          await assert.rejects(
            call(),
            (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.INVALID_ARGUMENT && err.code === "LW_ERR_MANAGER_INVALID_ARGUMENT",
          );
      }
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

describe("lacewing-manager without a token (loopback only)", () => {
  let scheduler: FakeScheduler;
  let m: ManagerUnderTest;

  before(async () => {
    scheduler = new FakeScheduler();
    await scheduler.start();
    m = await startManager({ scheduler: scheduler.address, token: "", allowedHosts: "manager.internal, pinned.internal:1234" });
  });
  after(async () => {
    await m.close();
    await scheduler.close();
  });

  it("answers 421 to a Host that is not one of its names, as a DNS-rebound page sends", async () => {
    const port = m.manager.restPort;
    const body = JSON.stringify({ type: "preheat", args: { type: "file", url: "http://files.example/rebound" } });
    // The page is same-origin with its own (rebound) name, so only the Host gives it away.
    for (const host of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `pinned.internal:${port}`]) {
      const rebound = await m.raw("POST", "/api/v1/jobs", { host, origin: `http://${host}`, "content-type": "application/json" }, body);
      assert.equal(rebound.status, 421, host);
      assert.equal((rebound.body["error"] as { code: string }).code, "LW_ERR_MANAGER_MISDIRECTED_REQUEST");
    }
    for (const host of [`evil.example:${port}`, `localhost:${port + 1}`, "localhost", "", "a@b", `[::2]:${port}`]) {
      assert.equal((await m.raw("GET", "/api/v1/jobs", { host })).status, 421, JSON.stringify(host));
    }
    assert.equal((await m.request("GET", "/api/v1/jobs")).body["total"], 0, "no job was created");
  });

  it("answers under the listen address, localhost, 127.0.0.1, [::1] and the allowedHosts names", async () => {
    const port = m.manager.restPort;
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      `[::1]:${port}`,
      "manager.internal",
      "manager.internal:8443",
      "pinned.internal:1234",
    ]) {
      assert.equal((await m.raw("GET", "/api/v1/jobs", { host })).status, 200, host);
    }
    const created = await m.raw(
      "POST",
      "/api/v1/jobs",
      { host: `localhost:${port}`, "content-type": "application/json" },
      JSON.stringify({ type: "preheat", args: { type: "file", url: "http://files.example/local" } }),
    );
    assert.equal(created.status, 202);
  });

  it("keeps the probes and /metrics open to any Host, since Kubernetes and Prometheus address the pod by IP", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics"])
      assert.equal((await m.raw("GET", path, { host: `10.1.2.3:${m.manager.restPort}` })).status, 200, path);
  });
});

describe("lacewing-manager config", () => {
  it("refuses to listen beyond loopback without a token, naming the key", () => {
    assert.throws(() => loadManagerConfig({ flags: { listen: "0.0.0.0:8080" } }), /token is required when listen/);
    assert.throws(() => loadManagerConfig({ flags: { grpcListen: "10.1.2.3:8081" } }), /token is required when grpcListen/);
    assert.doesNotThrow(() => loadManagerConfig({ flags: { listen: "0.0.0.0:8080", grpcListen: "0.0.0.0:8081", token: "t" } }));
  });

  it("reads allowedHosts as a list and refuses an entry that is not NAME or NAME:PORT", () => {
    assert.deepEqual(loadManagerConfig({ flags: { allowedHosts: "a.internal, b.internal:8080" } }).allowedHosts, ["a.internal", "b.internal:8080"]);
    assert.deepEqual(loadManagerConfig({ env: { LACEWING_MANAGER_ALLOWED_HOSTS: "[::1]:9000" } }).allowedHosts, ["[::1]:9000"]);
    assert.throws(() => loadManagerConfig({ flags: { allowedHosts: "http://a.internal/" } }), /invalid --allowed-hosts: entry "http:\/\/a.internal\/"/);
  });

  it("refuses a trigger timeout beyond the timer limit, naming the key", () => {
    assert.throws(() => loadManagerConfig({ flags: { triggerTimeout: "60d" } }), /invalid --trigger-timeout: must be at most 2147483647ms/);
    assert.equal(loadManagerConfig({ flags: { triggerTimeout: "2h" } }).triggerTimeout, 7_200_000);
  });
});

describe("lacewing-manager restart in embedded mode", () => {
  it("resumes a job interrupted mid-trigger from the on-disk database, credentials included, and drops them once it is final", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "lw-manager-"));
    const registry = await startFakeRegistry({ username: "alice", password: "resume-pass" });
    const scheduler = new FakeScheduler();
    await scheduler.start();
    const held = registry.amd64Layers[1];
    scheduler.respond = (call, signal) =>
      call.request.download?.digest === held
        ? new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }))
        : Promise.resolve(succeeded(call.taskId));
    const flags = { scheduler: scheduler.address, dataDir, taskConcurrency: 1 };
    const secretsOf = async (id: string): Promise<unknown> => {
      // The manager is closed: nothing else has the embedded database open.
      const db = await openDatabase({ url: "", schema: "public", dataDir });
      try {
        return ((await db("jobs").where({ id }).first("secrets")) as { secrets: unknown }).secrets;
      } finally {
        await db.destroy();
      }
    };
    let first: ManagerUnderTest | undefined = await startManager(flags);
    let second: ManagerUnderTest | undefined;
    try {
      const heldTrigger = new Promise<void>((resolve) =>
        scheduler.on("trigger", (call: RecordedTrigger) => call.request.download?.digest === held && resolve()),
      );
      const created = await first.request("POST", "/api/v1/jobs", {
        type: "preheat",
        args: { type: "image", url: registry.manifestUrl(), username: "alice", password: "resume-pass", headers: { "X-Team-Token": "team-token-value" } },
      });
      const id = created.body["id"] as string;
      await heldTrigger;
      await first.close();
      first = undefined;
      // Not final yet: the credentials are still there for the next run.
      assert.deepEqual(await secretsOf(id), { password: "resume-pass", headers: { "X-Team-Token": "team-token-value" }, urls: [registry.manifestUrl()] });

      const before = scheduler.triggers.length;
      scheduler.respond = (call) => Promise.resolve(succeeded(call.taskId));
      second = await startManager(flags);
      const job = await second.waitForJob(id, isFinished);
      assert.equal(job.state, "succeeded", job.error);
      assert.deepEqual(
        job.tasks.map((t) => t.state),
        ["succeeded", "succeeded", "succeeded", "succeeded"],
      );
      const count = (digest: string | undefined): number => scheduler.triggers.filter((t) => t.request.download?.digest === digest).length;
      assert.equal(count(registry.amd64Layers[0]), 1, "a finished layer is not triggered again");
      assert.equal(count(held), 2);
      // The resumed run logged in with the stored password and sent the stored header.
      for (const call of scheduler.triggers.slice(before)) {
        assert.equal(call.request.download?.requestHeaders["Authorization"], `Bearer ${registry.token}`);
        assert.equal(call.request.download?.requestHeaders["X-Team-Token"], "team-token-value");
      }
      await second.close();
      second = undefined;
      assert.deepEqual(await secretsOf(id), {}, "a final job keeps no credentials");
    } finally {
      await first?.close();
      await second?.close();
      await Promise.all([scheduler.close(), registry.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
