import type { Knex } from "knex";
import { ErrorCode, LacewingError, type Logger } from "@lacewing/common";
import { flowViewOf, taskMatches, taskViewOf, type HostIndex } from "./cluster/task-views.js";
import type { JobStore } from "./db/job-store.js";
import { createJobInputOf, normalJobId, splitSecrets } from "./jobs/job-args.js";
import type { JobQueue } from "./jobs/job-queue.js";
import type { Job, JobState, JobType } from "./jobs/job.js";
import type { ManagerMetrics } from "./metrics.js";
import { DEFAULT_PER_PAGE, type ClusterView, type CreateJobBody, type HostView, type TaskFlowView, type TaskView } from "./schema/api-schemas.js";
import type { SchedulerPool, SchedulerStatus } from "./scheduler/scheduler-pool.js";

export type Cluster = ClusterView;

export interface JobPage {
  jobs: Job[];
  page: number;
  perPage: number;
  total: number;
}

export interface TaskPage {
  tasks: TaskView[];
  page: number;
  perPage: number;
  total: number;
  unreachable: SchedulerStatus[];
}

/**
 * The manager's operations, shared by the REST and gRPC fronts. Inputs are
 * already checked against the API's schemas (src/schema/) by the front that
 * received them.
 */
export interface ManagerApi {
  createJob(body: CreateJobBody): Promise<Job>;
  getJob(id: string): Promise<Job>;
  listJobs(query: { state?: JobState | undefined; type?: JobType | undefined; page?: number | undefined; perPage?: number | undefined }): Promise<JobPage>;
  cancelJob(id: string): Promise<Job>;
  listClusters(): Promise<Cluster[]>;
  listSchedulers(): Promise<SchedulerStatus[]>;
  /** Hosts of every reachable scheduler; `seedOnly` keeps seed peers. */
  listHosts(seedOnly: boolean): Promise<{ hosts: HostView[]; unreachable: SchedulerStatus[] }>;
  /** Tasks of every reachable scheduler, newest first, filtered by a search text and state. */
  listTasks(query: {
    q?: string | undefined;
    state?: TaskView["state"] | undefined;
    page?: number | undefined;
    perPage?: number | undefined;
  }): Promise<TaskPage>;
  getTask(id: string): Promise<TaskView>;
  /** The task's recent flow: edges and the piece landings after `afterSeq`. */
  getTaskFlow(id: string, afterSeq: number): Promise<TaskFlowView>;
}

export interface ManagerApiDeps {
  db: Knex;
  store: JobStore;
  queue: JobQueue;
  schedulers: SchedulerPool;
  metrics: ManagerMetrics;
  logger: Logger;
}

export function createManagerApi(deps: ManagerApiDeps): ManagerApi {
  const { store, queue, schedulers, metrics, logger } = deps;
  const hostIndex = async (): Promise<HostIndex> => new Map((await schedulers.listHosts()).hosts.map((host) => [host.id, host]));
  const allTasks = async (taskId?: string, known?: HostIndex): Promise<{ tasks: TaskView[]; unreachable: SchedulerStatus[] }> => {
    const [{ answers, schedulers: statuses }, hosts] = await Promise.all([schedulers.listTasks(taskId === undefined ? {} : { taskId }), known ?? hostIndex()]);
    const tasks = answers.flatMap((answer) => answer.tasks.map((task) => taskViewOf(task, answer.scheduler, hosts)));
    tasks.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
    return { tasks, unreachable: statuses.filter((s) => !s.reachable) };
  };
  const taskNotFound = (id: string): LacewingError => new LacewingError(ErrorCode.managerNotFound, "not_found", `no scheduler knows task ${id}`);
  return {
    async createJob(body) {
      const input = createJobInputOf(body);
      const { args, secrets } = splitSecrets(input.args);
      const job = await store.create(input.type, args, secrets);
      metrics.jobCreated();
      // Logged args are the redacted ones: no password, no header value, no URL credential.
      logger.info({ jobId: job.id, type: job.type, args: job.args }, "job created");
      await queue.enqueue(job.id);
      return job;
    },
    getJob: async (id) => store.get(normalJobId(id)),
    async listJobs(query) {
      const filter = { state: query.state, type: query.type, page: query.page ?? 1, perPage: query.perPage ?? DEFAULT_PER_PAGE };
      const { jobs, total } = await store.list(filter);
      return { jobs, total, page: filter.page, perPage: filter.perPage };
    },
    async cancelJob(rawId) {
      const id = normalJobId(rawId);
      const { job, cancelled } = await store.cancel(id);
      if (cancelled) {
        queue.cancel(id);
        metrics.jobFinished("cancelled");
        logger.info({ jobId: id }, "job cancelled");
      }
      return job;
    },
    async listClusters() {
      const rows = (await deps.db("clusters").select("id", "name", "description").orderBy("id")) as Array<{ id: number; name: string; description: string }>;
      // One cluster holds every configured scheduler until clusters are managed here.
      return rows.map((row) => ({ ...row, schedulerAddresses: row.name === "default" ? [...schedulers.addresses] : [] }));
    },
    async listSchedulers() {
      return (await schedulers.listHosts()).schedulers;
    },
    async listHosts(seedOnly) {
      const { hosts, schedulers: statuses } = await schedulers.listHosts();
      return { hosts: seedOnly ? hosts.filter((h) => h.type === "seed") : hosts, unreachable: statuses.filter((s) => !s.reachable) };
    },
    async listTasks(query) {
      const page = query.page ?? 1;
      const perPage = query.perPage ?? DEFAULT_PER_PAGE;
      const { tasks, unreachable } = await allTasks();
      const matching = tasks.filter((task) => taskMatches(task, query.q ?? "") && (query.state === undefined || task.state === query.state));
      return { tasks: matching.slice((page - 1) * perPage, page * perPage), page, perPage, total: matching.length, unreachable };
    },
    async getTask(id) {
      const task = (await allTasks(id)).tasks.find((t) => t.id === id);
      if (task === undefined) throw taskNotFound(id);
      return task;
    },
    async getTaskFlow(id, afterSeq) {
      const found = await schedulers.taskFlow(id, afterSeq);
      if (found === undefined) throw new LacewingError(ErrorCode.managerNotFound, "not_found", `no scheduler holds a recent flow of task ${id}`);
      const hosts = await hostIndex();
      const { tasks } = await allTasks(id, hosts);
      return flowViewOf(found.flow, found.scheduler, tasks.find((t) => t.id === id) ?? null, hosts);
    },
  };
}
