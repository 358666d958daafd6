import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type, type TSchema } from "typebox";
import type { Job } from "../jobs/job.js";
import type { ManagerApi } from "../manager-api.js";
import {
  Cluster,
  CreateJobBody,
  ErrorBody,
  HostList,
  Job as JobSchema,
  JobIdParams,
  JobPage,
  ListJobsQuery,
  ListTasksQuery,
  SchedulerStatus,
  Task,
  TaskFlow,
  TaskFlowQuery,
  TaskIdParams,
  TaskList,
  type JobView,
} from "../schema/api-schemas.js";

type Api = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** The error answers every API route may give (the browser guards and the token), plus the route's own. */
function responses(ok: Record<number, TSchema>, ...errors: number[]): Record<number, TSchema> {
  const all: Record<number, TSchema> = { ...ok };
  for (const status of [401, 403, 421, 500, ...errors]) all[status] = ErrorBody;
  return all;
}

/** A job as JSON: dates as ISO strings. Args and task URLs come redacted from the store. */
export function jobJson(job: Job): JobView {
  return {
    id: job.id,
    type: job.type,
    state: job.state,
    args: job.args,
    progress: job.progress,
    tasks: job.tasks,
    error: job.error,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}

/** Every /api/v1 route: the same paths, status codes and error shape as the API has always had, now each with its schemas. */
export function registerApiRoutes(app: Api, api: ManagerApi): void {
  app.post(
    "/jobs",
    {
      schema: {
        tags: ["jobs"],
        summary: "Create a preheat job",
        description: "Answers 202 with the job (pending); credentials in the args come back redacted.",
        body: CreateJobBody,
        response: responses({ 202: JobSchema }, 400, 415),
      },
    },
    async (request, reply) => reply.code(202).send(jobJson(await api.createJob(request.body))),
  );
  app.get(
    "/jobs",
    { schema: { tags: ["jobs"], summary: "List jobs, newest first", querystring: ListJobsQuery, response: responses({ 200: JobPage }, 400) } },
    async (request) => {
      const { state, type, page, perPage, per_page } = request.query;
      const listed = await api.listJobs({ state, type, page, perPage: perPage ?? per_page });
      return { jobs: listed.jobs.map(jobJson), page: listed.page, perPage: listed.perPage, total: listed.total };
    },
  );
  // GET and DELETE of one job: the same path parameter, and the job as it is after the call.
  const oneJob = { tags: ["jobs"], params: JobIdParams, response: responses({ 200: JobSchema }, 400, 404) };
  app.get("/jobs/:id", { schema: { ...oneJob, summary: "A job: state, progress and per-task, per-host results" } }, async (request) =>
    jobJson(await api.getJob(request.params.id)),
  );
  app.delete(
    "/jobs/:id",
    { schema: { ...oneJob, summary: "Cancel a job", description: "A running job stops before its next task; a finished job keeps its state." } },
    async (request) => jobJson(await api.cancelJob(request.params.id)),
  );
  app.get(
    "/clusters",
    { schema: { tags: ["cluster"], summary: "Clusters and their schedulers", response: responses({ 200: Type.Object({ clusters: Type.Array(Cluster) }) }) } },
    async () => ({ clusters: await api.listClusters() }),
  );
  app.get(
    "/schedulers",
    {
      schema: {
        tags: ["cluster"],
        summary: "Schedulers, reachable or not",
        response: responses({ 200: Type.Object({ schedulers: Type.Array(SchedulerStatus) }) }),
      },
    },
    async () => ({ schedulers: await api.listSchedulers() }),
  );
  app.get("/hosts", { schema: { tags: ["cluster"], summary: "Every host the schedulers know", response: responses({ 200: HostList }) } }, async () =>
    api.listHosts(false),
  );
  app.get("/seed-peers", { schema: { tags: ["cluster"], summary: "The seed peers the schedulers know", response: responses({ 200: HostList }) } }, async () =>
    api.listHosts(true),
  );
  app.get(
    "/tasks",
    {
      schema: {
        tags: ["tasks"],
        summary: "Tasks the schedulers know, newest first",
        description: "Search by a substring of the URL, the digest or the task id; filter by state.",
        querystring: ListTasksQuery,
        response: responses({ 200: TaskList }, 400),
      },
    },
    async (request) => api.listTasks(request.query),
  );
  app.get(
    "/tasks/:id",
    {
      schema: {
        tags: ["tasks"],
        summary: "A task with its peers, their progress and sources",
        params: TaskIdParams,
        response: responses({ 200: Task }, 400, 404),
      },
    },
    async (request) => api.getTask(request.params.id),
  );
  app.get(
    "/tasks/:id/flow",
    {
      schema: {
        tags: ["tasks"],
        summary: "The recent flow of a task's pieces",
        description:
          "Bytes per parent → child edge (the origin is parent -1) and piece landings per peer, from the owning scheduler's bounded record. Poll with afterSeq = the previous nextSeq to get only new landings.",
        params: TaskIdParams,
        querystring: TaskFlowQuery,
        response: responses({ 200: TaskFlow }, 400, 404, 503),
      },
    },
    async (request) => api.getTaskFlow(request.params.id, request.query.afterSeq ?? 0),
  );
}
