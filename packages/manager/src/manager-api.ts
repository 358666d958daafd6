import type { Knex } from "knex";
import type { Logger } from "@lacewing/common";
import type { JobStore } from "./db/job-store.js";
import { parseCreateJob, parseJobId, parseListJobs, splitSecrets } from "./jobs/job-args.js";
import type { JobQueue } from "./jobs/job-queue.js";
import type { Job } from "./jobs/job.js";
import type { ManagerMetrics } from "./metrics.js";
import type { HostView, SchedulerPool, SchedulerStatus } from "./scheduler/scheduler-pool.js";

export interface Cluster {
  id: number;
  name: string;
  description: string;
  schedulerAddresses: string[];
}

export interface JobPage {
  jobs: Job[];
  page: number;
  perPage: number;
  total: number;
}

/** The manager's operations, shared by the REST and gRPC fronts. */
export interface ManagerApi {
  createJob(body: unknown): Promise<Job>;
  getJob(id: string): Promise<Job>;
  listJobs(query: { state?: string; type?: string; page?: string | number; perPage?: string | number }): Promise<JobPage>;
  cancelJob(id: string): Promise<Job>;
  listClusters(): Promise<Cluster[]>;
  listSchedulers(): Promise<SchedulerStatus[]>;
  /** Hosts of every reachable scheduler; `seedOnly` keeps seed peers. */
  listHosts(seedOnly: boolean): Promise<{ hosts: HostView[]; unreachable: SchedulerStatus[] }>;
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
  return {
    async createJob(body) {
      const input = parseCreateJob(body);
      const { args, secrets } = splitSecrets(input.args);
      const job = await store.create(input.type, args, secrets);
      metrics.jobCreated();
      // Logged args are the redacted ones: no password, no header value, no URL credential.
      logger.info({ jobId: job.id, type: job.type, args: job.args }, "job created");
      await queue.enqueue(job.id);
      return job;
    },
    getJob: async (id) => store.get(parseJobId(id)),
    async listJobs(query) {
      const parsed = parseListJobs(query);
      const { jobs, total } = await store.list(parsed);
      return { jobs, total, page: parsed.page, perPage: parsed.perPage };
    },
    async cancelJob(rawId) {
      const id = parseJobId(rawId);
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
  };
}
