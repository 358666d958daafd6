import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import knexPkg from "knex";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { QUEUE_NAME } from "./jobs/bullmq-queue.js";
import { startFakeRegistry, type FakeRegistry } from "./testing/fake-registry.js";
import { FakeScheduler, succeeded, type RecordedTrigger } from "./testing/fake-scheduler.js";
import { isFinished, startManager, type ManagerUnderTest } from "./testing/harness.js";

const DATABASE_URL = process.env["LACEWING_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env["LACEWING_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

describe("lacewing-manager in production mode (Postgres + Redis/BullMQ)", () => {
  // Each run gets its own schema and queue prefix, removed afterwards.
  const suffix = randomBytes(4).toString("hex");
  const flags = { databaseUrl: DATABASE_URL, databaseSchema: `lw_manager_test_${suffix}`, redisUrl: REDIS_URL, queuePrefix: `lw-manager-test-${suffix}` };
  let registry: FakeRegistry;
  let scheduler: FakeScheduler;
  const running: ManagerUnderTest[] = [];

  const start = async (extra: Record<string, unknown> = {}, options: { queueLockDurationMs?: number } = {}): Promise<ManagerUnderTest> => {
    const m = await startManager({ ...flags, scheduler: scheduler.address, ...extra }, options);
    running.push(m);
    return m;
  };
  const stop = async (m: ManagerUnderTest): Promise<void> => {
    running.splice(running.indexOf(m), 1);
    await m.close();
  };
  const hold = (_call: RecordedTrigger, signal: AbortSignal): Promise<never> =>
    new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));

  const queueEntryGone = async (jobId: string): Promise<void> => {
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(QUEUE_NAME, { connection, prefix: flags.queuePrefix });
    try {
      // BullMQ has no completion event across connections that is simpler than this poll.
      for (let i = 0; (await queue.getJob(jobId)) !== undefined; i++) {
        assert.ok(i < 200, "queue entry still present");
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      await queue.close();
      await connection.quit();
    }
  };

  /** The secrets column of a job's row, read straight from Postgres. */
  const rowSecrets = async (jobId: string): Promise<unknown> => {
    const db = knexPkg.knex({ client: "pg", connection: DATABASE_URL, searchPath: [flags.databaseSchema] });
    try {
      return ((await db("jobs").where({ id: jobId }).first("secrets")) as { secrets: unknown }).secrets;
    } finally {
      await db.destroy();
    }
  };

  before(async () => {
    registry = await startFakeRegistry();
    scheduler = new FakeScheduler();
    await scheduler.start();
  });

  after(async () => {
    await Promise.all(running.map((m) => m.close()));
    await Promise.all([scheduler.close(), registry.close()]);
    const db = knexPkg.knex({ client: "pg", connection: DATABASE_URL });
    await db.raw(`DROP SCHEMA IF EXISTS "${flags.databaseSchema}" CASCADE`);
    await db.destroy();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${flags.queuePrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("runs an image preheat through the BullMQ queue and stores it in Postgres", async () => {
    const m = await start();
    const created = await m.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "image", url: registry.manifestUrl(), scope: "all_seed_peers", headers: { "X-Team-Token": "team-token-value" } },
    });
    assert.equal(created.status, 202);
    const job = await m.waitForJob(created.body["id"] as string, isFinished);
    assert.equal(job.state, "succeeded", job.error);
    assert.deepEqual(await rowSecrets(job.id), {}, "a final job keeps no credentials");
    assert.deepEqual(
      job.tasks.map((t) => t.digest),
      [registry.amd64Config, ...registry.amd64Layers],
    );
    const listed = await m.request("GET", "/api/v1/jobs?state=succeeded");
    assert.equal(listed.body["total"], 1);
    await stop(m);
  });

  it("finishes a job on a new manager after the first one closed mid-trigger", async () => {
    const held = registry.amd64Layers[1];
    scheduler.respond = (call, signal) => (call.request.download?.digest === held ? hold(call, signal) : Promise.resolve(succeeded(call.taskId)));
    const first = await start({ taskConcurrency: 1 });
    const heldTrigger = new Promise<void>((resolve) => scheduler.on("trigger", (call: RecordedTrigger) => call.request.download?.digest === held && resolve()));
    const before = scheduler.triggers.length;
    const created = await first.request("POST", "/api/v1/jobs", {
      type: "preheat",
      args: { type: "image", url: registry.manifestUrl(), headers: { "X-Team-Token": "team-token-value" } },
    });
    await heldTrigger;
    await stop(first);
    // Still running: the next replica needs the credentials.
    assert.deepEqual(await rowSecrets(created.body["id"] as string), {
      password: "",
      headers: { "X-Team-Token": "team-token-value" },
      urls: [registry.manifestUrl()],
    });

    scheduler.respond = (call) => Promise.resolve(succeeded(call.taskId));
    const second = await start({ taskConcurrency: 1 });
    const job = await second.waitForJob(created.body["id"] as string, isFinished);
    assert.equal(job.state, "succeeded", job.error);
    const digests = scheduler.triggers.slice(before).map((t) => t.request.download?.digest);
    assert.equal(digests.filter((d) => d === registry.amd64Layers[0]).length, 1, "a finished layer is not triggered again");
    assert.equal(digests.filter((d) => d === held).length, 2);
    assert.ok(scheduler.triggers.slice(before).every((t) => t.request.download?.requestHeaders["X-Team-Token"] === "team-token-value"));
    assert.deepEqual(await rowSecrets(job.id), {});
    await stop(second);
  });

  it("a cancel through another replica stops the job between tasks", async () => {
    let release: (() => void) | undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    scheduler.respond = async (call) => {
      await released;
      return succeeded(call.taskId);
    };
    const worker = await start({ taskConcurrency: 1 });
    const other = await start({ taskConcurrency: 1 });
    const urls = ["http://files.example/r1", "http://files.example/r2", "http://files.example/r3"];
    const firstTrigger = new Promise<void>((resolve) => scheduler.once("trigger", () => resolve()));
    const created = await worker.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", urls } });
    await firstTrigger;
    const cancelled = await other.request("DELETE", `/api/v1/jobs/${created.body["id"] as string}`);
    assert.equal(cancelled.body["state"], "cancelled");
    assert.deepEqual(await rowSecrets(created.body["id"] as string), {});
    release?.();
    // The replica running the job notices before its next task and completes the queue entry.
    await queueEntryGone(created.body["id"] as string);
    assert.equal(scheduler.triggers.filter((t) => urls.includes(t.request.download?.url ?? "")).length, 1);
    await stop(worker);
    await stop(other);
  });

  it("retries a job whose worker died (stalled-job recovery)", async () => {
    // The manager's only job slot is busy, so the doomed worker takes the next job.
    let release: (() => void) | undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    scheduler.respond = async (call) => {
      if (call.request.download?.url === "http://files.example/busy") await released;
      return succeeded(call.taskId);
    };
    // A queue of its own: BullMQ throttles stalled checks per queue to the slowest worker's interval.
    const queuePrefix = `${flags.queuePrefix}-stalled`;
    const m = await start({ jobConcurrency: 1, queuePrefix }, { queueLockDurationMs: 1_000 });
    const busyTrigger = new Promise<void>((resolve) => scheduler.once("trigger", () => resolve()));
    await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: "http://files.example/busy" } });
    await busyTrigger;

    let taken: (() => void) | undefined;
    const jobTaken = new Promise<void>((resolve) => (taken = resolve));
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const doomed = new Worker(
      QUEUE_NAME,
      () => {
        taken?.();
        return new Promise(() => undefined); // never finishes: the worker "dies" holding the job
      },
      { connection, prefix: queuePrefix, lockDuration: 1_000, stalledInterval: 500 },
    );
    const created = await m.request("POST", "/api/v1/jobs", { type: "preheat", args: { type: "file", url: "http://files.example/orphan" } });
    await jobTaken;
    // Dropping its connections stops the lock renewals, as a dead process would.
    await doomed.close(true);
    connection.disconnect();
    release?.();
    const job = await m.waitForJob(created.body["id"] as string, isFinished);
    assert.equal(job.state, "succeeded", job.error);
    assert.equal(job.tasks[0]?.url, "http://files.example/orphan");
    await stop(m);
  });
});
