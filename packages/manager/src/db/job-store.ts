import { randomUUID } from "node:crypto";
import type { Knex } from "knex";
import { ErrorCode, LacewingError, redactUrl } from "@lacewing/common";
import { redactArgs, withSecrets } from "../jobs/job-args.js";
import { progressOf, type Job, type JobSecrets, type JobState, type JobType, type PreheatArgs, type TaskResult } from "../jobs/job.js";

/** Which page of which jobs to list (checked by the API's schema). */
export interface JobFilter {
  state?: JobState | undefined;
  type?: JobType | undefined;
  page: number;
  perPage: number;
}

interface JobRow {
  id: string;
  type: string;
  state: string;
  args: PreheatArgs | string;
  secrets: JobSecrets | string;
  tasks: TaskResult[] | string;
  error: string;
  attempts: number;
  created_at: Date | string;
  updated_at: Date | string;
  started_at: Date | string | null;
  finished_at: Date | string | null;
}

/** Jobs in Postgres: the source of truth for their state, whatever runs them. */
export class JobStore {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  async create(type: JobType, args: PreheatArgs, secrets: JobSecrets): Promise<Job> {
    const now = new Date();
    const row = {
      id: randomUUID(),
      type,
      state: "pending",
      args: JSON.stringify(args),
      secrets: JSON.stringify(secrets),
      tasks: JSON.stringify([]),
      error: "",
      attempts: 0,
      created_at: now,
      updated_at: now,
    };
    await this.#db("jobs").insert(row);
    return toJob({ ...row, started_at: null, finished_at: null });
  }

  async get(id: string): Promise<Job> {
    const row = await this.#row(id);
    return toJob(row);
  }

  /** The job as shown, plus the args it runs with (credentials included), for the processor only. */
  async getWithSecrets(id: string): Promise<{ job: Job; args: PreheatArgs }> {
    const row = await this.#row(id);
    return { job: toJob(row), args: withSecrets(parseJson(row.args), parseJson(row.secrets)) };
  }

  async list(query: JobFilter): Promise<{ jobs: Job[]; total: number }> {
    const filtered = (): Knex.QueryBuilder => {
      const q = this.#db("jobs");
      if (query.state !== undefined) void q.where("state", query.state);
      if (query.type !== undefined) void q.where("type", query.type);
      return q;
    };
    const [countRow] = (await filtered().count({ n: "*" })) as Array<{ n: string | number }>;
    const rows = (await filtered()
      .select("*")
      .orderBy([
        { column: "created_at", order: "desc" },
        { column: "id", order: "desc" },
      ])
      .limit(query.perPage)
      .offset((query.page - 1) * query.perPage)) as JobRow[];
    return { jobs: rows.map(toJob), total: Number(countRow?.n ?? 0) };
  }

  /** Ids of jobs that were pending or running, oldest first (re-queued at start-up). */
  async unfinishedIds(): Promise<string[]> {
    const rows = (await this.#db("jobs").whereIn("state", ["pending", "running"]).orderBy("created_at", "asc").select("id")) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  async countByState(): Promise<Map<JobState, number>> {
    const rows = (await this.#db("jobs").select("state").count({ n: "*" }).groupBy("state")) as Array<{ state: JobState; n: string | number }>;
    return new Map(rows.map((r) => [r.state, Number(r.n)]));
  }

  /** pending|running → running; returns false when the job is already finished or cancelled. */
  async markRunning(id: string): Promise<boolean> {
    const now = new Date();
    const updated = await this.#db("jobs")
      .where({ id })
      .whereIn("state", ["pending", "running"])
      .update({ state: "running", updated_at: now, started_at: this.#db.raw("COALESCE(started_at, ?)", [now]), attempts: this.#db.raw("attempts + 1") });
    return updated > 0;
  }

  /** Records task results while the job runs; a no-op once the job left "running". */
  async saveTasks(id: string, tasks: readonly TaskResult[]): Promise<void> {
    await this.#db("jobs")
      .where({ id, state: "running" })
      .update({ tasks: JSON.stringify(tasks), updated_at: new Date() });
  }

  /**
   * running → succeeded|failed, unless the job was cancelled meanwhile. Returns whether it moved.
   * A final job never runs again, so its credentials are dropped in the same update.
   */
  async finish(id: string, state: "succeeded" | "failed", tasks: readonly TaskResult[], error: string): Promise<boolean> {
    const now = new Date();
    const updated = await this.#db("jobs")
      .where({ id })
      .whereIn("state", ["pending", "running"])
      .update({ state, tasks: JSON.stringify(tasks), error, secrets: PURGED_SECRETS, updated_at: now, finished_at: now });
    return updated > 0;
  }

  /** pending|running → cancelled, dropping the credentials. Returns the job and whether this call cancelled it. */
  async cancel(id: string): Promise<{ job: Job; cancelled: boolean }> {
    const now = new Date();
    const updated = await this.#db("jobs")
      .where({ id })
      .whereIn("state", ["pending", "running"])
      .update({ state: "cancelled", updated_at: now, finished_at: now, error: "cancelled by request", secrets: PURGED_SECRETS });
    return { job: await this.get(id), cancelled: updated > 0 };
  }

  async state(id: string): Promise<JobState> {
    const row = (await this.#db("jobs").where({ id }).first("state")) as { state: JobState } | undefined;
    if (row === undefined) throw notFound(id);
    return row.state;
  }

  async #row(id: string): Promise<JobRow> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw notFound(id);
    const row = (await this.#db("jobs").where({ id }).first()) as JobRow | undefined;
    if (row === undefined) throw notFound(id);
    return row;
  }
}

/** What the secrets column holds once a job is final. */
const PURGED_SECRETS = JSON.stringify({} satisfies JobSecrets);

function notFound(id: string): LacewingError {
  return new LacewingError(ErrorCode.managerJobNotFound, "not_found", `job ${id} not found`, { details: { jobId: id } });
}

function parseJson<T>(value: T | string): T {
  return typeof value === "string" ? (JSON.parse(value) as T) : value;
}

function toDate(value: Date | string): Date;
function toDate(value: Date | string | null): Date | null;
function toDate(value: Date | string | null): Date | null {
  if (value === null) return null;
  return value instanceof Date ? value : new Date(value);
}

/** A row as the API shows it. Args and task URLs are redacted again here, which also covers rows stored before a redaction rule existed. */
function toJob(row: JobRow): Job {
  const args = redactArgs(parseJson(row.args));
  const tasks = parseJson(row.tasks).map((task) => ({ ...task, url: redactUrl(task.url, { filteredQueryParams: args.filteredQueryParams }) }));
  return {
    id: row.id,
    type: row.type as JobType,
    state: row.state as JobState,
    args,
    progress: progressOf(tasks),
    tasks,
    error: row.error,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    startedAt: toDate(row.started_at),
    finishedAt: toDate(row.finished_at),
  };
}
