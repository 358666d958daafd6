import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { schedulerv1 } from "@lacewing/api";
import { taskIdOf } from "@lacewing/common";
import { FakeScheduler } from "../testing/fake-scheduler.js";
import { isFinished, startManager, type ManagerUnderTest } from "../testing/harness.js";

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

const TASK_URL = "http://files.example/contract.bin?sig=s3cret";
const TASK_ID = taskIdOf({ url: TASK_URL });

/** A scheduler that knows one task, downloaded by a seed from the origin and by a peer from the seed. */
function withTask(scheduler: FakeScheduler): void {
  const now = BigInt(Date.now());
  scheduler.tasks = {
    tasks: [
      {
        info: { taskId: TASK_ID, contentLength: 3n * 1024n * 1024n, pieceLength: 1024n * 1024n, totalPieces: 3, digest: "" },
        url: "http://files.example/contract.bin?sig=[redacted]",
        state: schedulerv1.TaskState.RUNNING,
        createdAtMs: now,
        peers: [
          {
            peerId: "seed-peer",
            hostId: "seed-1",
            state: schedulerv1.PeerState.SUCCEEDED,
            finishedPieces: 3,
            createdAtMs: now,
            updatedAtMs: now,
            sources: [{ parentId: "", bytes: 3n * 1024n * 1024n, pieces: 3 }],
          },
          {
            peerId: "node-peer",
            hostId: "node-1",
            state: schedulerv1.PeerState.RUNNING,
            finishedPieces: 1,
            createdAtMs: now,
            updatedAtMs: now,
            sources: [{ parentId: "seed-peer", bytes: 1024n * 1024n, pieces: 1 }],
          },
        ],
      },
    ],
  };
  scheduler.flows.set(TASK_ID, {
    taskId: TASK_ID,
    startedAtMs: now,
    peers: [
      { peerId: "seed-peer", hostId: "seed-1" },
      { peerId: "node-peer", hostId: "node-1" },
    ],
    edges: [
      { parent: -1, child: 0, bytes: 3n * 1024n * 1024n, pieces: 3, firstMs: 0, lastMs: 20 },
      { parent: 0, child: 1, bytes: 1024n * 1024n, pieces: 1, firstMs: 30, lastMs: 30 },
    ],
    landingChild: [0, 0, 0, 1],
    landingParent: [-1, -1, -1, 0],
    landingPiece: [0, 1, 2, 0],
    landingMs: [0, 10, 20, 30],
    firstSeq: 0n,
  });
}

/** The OpenAPI path template a concrete path matches ("/api/v1/jobs/{id}"). */
function templateOf(doc: Document, path: string): string | undefined {
  return Object.keys(doc.paths).find((template) => new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path));
}

describe("the REST port: the OpenAPI document, every route against it, and the console page", () => {
  let scheduler: FakeScheduler;
  let m: ManagerUnderTest;
  let open: ManagerUnderTest;
  let doc: Document;
  const covered = new Set<string>();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormatsModule as unknown as (ajv: Ajv2020) => void)(ajv);

  before(async () => {
    scheduler = new FakeScheduler();
    await scheduler.start();
    withTask(scheduler);
    m = await startManager({ scheduler: scheduler.address });
    open = await startManager({ scheduler: scheduler.address, token: "" });
    const served = await fetch(`${m.baseUrl}/api/v1/openapi.json`);
    assert.equal(served.status, 200);
    doc = (await served.json()) as Document;
  });
  after(async () => {
    await m.close();
    await open.close();
    await scheduler.close();
  });

  /** Sends a request and checks the answer against the document's schema for its route and status. */
  async function check(
    target: ManagerUnderTest,
    method: string,
    path: string,
    options: { body?: string; headers?: Record<string, string>; token?: boolean } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const headers: Record<string, string> = { ...(options.token === false ? {} : { authorization: "Bearer secret-token" }), ...options.headers };
    if (options.body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json";
    const response = await target.raw(method, path, headers, options.body);
    const template = templateOf(doc, path.split("?")[0] ?? "");
    assert.ok(template !== undefined, `${path} is in the document`);
    const operation = doc.paths[template]?.[method.toLowerCase()];
    assert.ok(operation !== undefined, `${method} ${template} is in the document`);
    const declared = operation.responses[String(response.status)];
    assert.ok(declared !== undefined, `${method} ${template} documents status ${response.status}`);
    const schema = declared.content?.["application/json"]?.schema;
    assert.ok(schema !== undefined, `${method} ${template} ${response.status} has a JSON schema`);
    const validate = ajv.compile(schema);
    assert.ok(validate(response.body), `${method} ${path} → ${response.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(response.body)}`);
    covered.add(`${method.toUpperCase()} ${template} ${response.status}`);
    return response;
  }

  it("is a valid OpenAPI 3.1 document", async () => {
    assert.equal(doc.openapi, "3.1.0");
    const result = await new Validator().validate(doc as unknown as Parameters<Validator["validate"]>[0]);
    assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
    // The reference page is served beside it.
    const page = await fetch(`${m.baseUrl}/api/v1/docs/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger/i);
  });

  it("serves the console's page without the token, unframeable and with its own scripts only, while the API still needs the token", async () => {
    const page = await m.raw("GET", "/", {});
    assert.equal(page.status, 200);
    assert.match(String(page.headers["content-type"]), /^text\/html/);
    assert.match(String(page.headers["content-security-policy"]), /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(page.headers["x-frame-options"], "DENY");
    assert.equal((await m.raw("GET", "/main.js", {})).status, 200);
    assert.equal((await m.raw("GET", "/api/v1/hosts", {})).status, 401);
    assert.equal((await m.raw("GET", "/", { origin: "https://evil.example" })).status, 403);
  });

  it("describes every answer of every route: each status a route gave here matches the route's response schema", async () => {
    const job = JSON.stringify({ type: "preheat", args: { type: "file", url: "http://files.example/contract-job.bin", password: "pw", headers: { A: "b" } } });
    const created = await check(m, "POST", "/api/v1/jobs", { body: job });
    assert.equal(created.status, 202);
    const id = created.body["id"] as string;
    await m.waitForJob(id, isFinished);
    assert.equal((await check(m, "POST", "/api/v1/jobs", { body: JSON.stringify({ type: "preheat", args: { type: "file" } }) })).status, 400);
    assert.equal((await check(m, "POST", "/api/v1/jobs", { body: job, token: false })).status, 401);
    assert.equal((await check(m, "POST", "/api/v1/jobs", { body: job, headers: { "content-type": "text/plain" } })).status, 415);
    assert.equal((await check(m, "POST", "/api/v1/jobs", { body: job, headers: { origin: "https://evil.example" } })).status, 403);
    assert.equal((await check(open, "POST", "/api/v1/jobs", { body: job, headers: { host: "evil.example" } })).status, 421);

    assert.equal((await check(m, "GET", "/api/v1/jobs?perPage=5")).status, 200);
    assert.equal((await check(m, "GET", "/api/v1/jobs?page=0")).status, 400);
    assert.equal((await check(m, "GET", `/api/v1/jobs/${id}`)).status, 200);
    assert.equal((await check(m, "GET", "/api/v1/jobs/not-a-job")).status, 400);
    assert.equal((await check(m, "GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000")).status, 404);
    assert.equal((await check(m, "DELETE", `/api/v1/jobs/${id}`)).status, 200);
    assert.equal((await check(m, "DELETE", "/api/v1/jobs/not-a-job")).status, 400);
    assert.equal((await check(m, "DELETE", "/api/v1/jobs/00000000-0000-0000-0000-000000000000")).status, 404);

    for (const path of ["/api/v1/clusters", "/api/v1/schedulers", "/api/v1/hosts", "/api/v1/seed-peers"])
      assert.equal((await check(m, "GET", path)).status, 200, path);

    const tasks = await check(m, "GET", "/api/v1/tasks?q=contract");
    assert.equal(tasks.status, 200);
    assert.equal((tasks.body["tasks"] as unknown[]).length, 1);
    assert.equal((await check(m, "GET", "/api/v1/tasks?state=bogus")).status, 400);
    const task = await check(m, "GET", `/api/v1/tasks/${TASK_ID}`);
    assert.equal(task.status, 200);
    assert.equal((task.body["peers"] as Array<{ hostname: string; progress: number }>)[1]?.progress, 1 / 3);
    assert.equal((await check(m, "GET", `/api/v1/tasks/${"0".repeat(64)}`)).status, 404);
    assert.equal((await check(m, "GET", "/api/v1/tasks/not-a-task")).status, 400);
    const flow = await check(m, "GET", `/api/v1/tasks/${TASK_ID}/flow`);
    assert.equal(flow.status, 200);
    assert.equal(flow.body["nextSeq"], 4);
    assert.equal((await check(m, "GET", `/api/v1/tasks/${"0".repeat(64)}/flow`)).status, 404);
    assert.equal((await check(m, "GET", `/api/v1/tasks/${TASK_ID}/flow?afterSeq=-1`)).status, 400);

    // Every documented route was called, and gave its success answer.
    for (const [template, methods] of Object.entries(doc.paths))
      for (const method of Object.keys(methods)) {
        const statuses = [...covered].filter((c) => c.startsWith(`${method.toUpperCase()} ${template} `));
        assert.ok(
          statuses.some((c) => /\s2\d\d$/.test(c)),
          `${method.toUpperCase()} ${template} was checked with a success answer (checked: ${statuses.join(", ") || "none"})`,
        );
      }
  });
});
