import { timingSafeEqual } from "node:crypto";
import type { managerv1 } from "@lacewing/api";
import { requireRole, type CallContext, type MessageInitShape, type ServiceImpl } from "@lacewing/api";
import { ErrorCode, LacewingError } from "@lacewing/common";
import type { Job } from "../jobs/job.js";
import type { ManagerApi } from "../manager-api.js";
import { CreateJobBody, JobIdParams, ListJobsQuery } from "../schema/api-schemas.js";
import { validateInput } from "../schema/validate.js";
import type { HostView, SchedulerStatus } from "../scheduler/scheduler-pool.js";

/** The Manager gRPC service over the same operations as the REST API. */
export function createManagerService(api: ManagerApi, token: string): ServiceImpl<typeof managerv1.Manager> {
  const authenticate = (ctx: CallContext): void => {
    // Over TLS only holders of the manager's certificate reach the API at all; the token is checked on top.
    requireRole(ctx, ["manager"], "the manager API");
    if (token === "") return;
    const value = ctx.metadata.get("authorization")[0];
    const header = typeof value === "string" ? value : "";
    const presented = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
    const expected = Buffer.from(token);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
      throw new LacewingError(ErrorCode.managerUnauthenticated, "unauthenticated", "missing or wrong bearer token");
  };
  return {
    async createJob(request, ctx) {
      authenticate(ctx);
      const args = request.args;
      // proto3 cannot tell an unset field from an empty one: both mean "not given", as an absent JSON key does.
      const body = withoutUnset({
        type: request.type,
        args:
          args === undefined
            ? undefined
            : withoutUnset({
                type: args.type,
                url: args.url,
                urls: args.urls,
                tag: args.tag,
                application: args.application,
                filteredQueryParams: args.filteredQueryParams,
                headers: args.headers,
                username: args.username,
                password: args.password,
                platform: args.platform,
                scope: args.scope,
              }),
      });
      return jobMessage(await api.createJob(validateInput(CreateJobBody, body)));
    },
    async getJob(request, ctx) {
      authenticate(ctx);
      return jobMessage(await api.getJob(validateInput(JobIdParams, { id: request.id }, "params").id));
    },
    async listJobs(request, ctx) {
      authenticate(ctx);
      const query = validateInput(
        ListJobsQuery,
        withoutUnset({ state: request.state, type: request.type, page: request.page, perPage: request.perPage }),
        "querystring",
      );
      const page = await api.listJobs(query);
      return { jobs: page.jobs.map(jobMessage), page: page.page, perPage: page.perPage, total: page.total };
    },
    async cancelJob(request, ctx) {
      authenticate(ctx);
      return jobMessage(await api.cancelJob(validateInput(JobIdParams, { id: request.id }, "params").id));
    },
    async listClusters(_request, ctx) {
      authenticate(ctx);
      return { clusters: await api.listClusters() };
    },
    async listSchedulers(_request, ctx) {
      authenticate(ctx);
      return { schedulers: (await api.listSchedulers()).map(schedulerMessage) };
    },
    async listSeedPeers(_request, ctx) {
      authenticate(ctx);
      return hostsMessage(await api.listHosts(true));
    },
    async listHosts(_request, ctx) {
      authenticate(ctx);
      return hostsMessage(await api.listHosts(false));
    },
  };
}

/** Drops proto3's defaults ("", 0, [], {}), which mean "not set". */
function withoutUnset(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).filter(
      ([, value]) =>
        value !== undefined &&
        value !== "" &&
        value !== 0 &&
        !(Array.isArray(value) && value.length === 0) &&
        !(typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0),
    ),
  );
}

function ms(date: Date | null): bigint {
  return BigInt(date?.getTime() ?? 0);
}

function jobMessage(job: Job): MessageInitShape<typeof managerv1.JobSchema> {
  const { urls, ...args } = job.args;
  return {
    id: job.id,
    type: job.type,
    state: job.state,
    args: { ...args, url: args.type === "image" ? (urls[0] ?? "") : "", urls: args.type === "image" ? [] : urls },
    doneTasks: job.progress.done,
    totalTasks: job.progress.total,
    tasks: job.tasks,
    error: job.error,
    createdAtMs: ms(job.createdAt),
    updatedAtMs: ms(job.updatedAt),
    startedAtMs: ms(job.startedAt),
    finishedAtMs: ms(job.finishedAt),
  };
}

function schedulerMessage(status: SchedulerStatus): MessageInitShape<typeof managerv1.SchedulerStatusSchema> {
  return status;
}

function hostsMessage(result: { hosts: HostView[]; unreachable: SchedulerStatus[] }): MessageInitShape<typeof managerv1.ListHostsResponseSchema> {
  return {
    hosts: result.hosts.map((host) => ({
      id: host.id,
      hostname: host.hostname,
      ip: host.ip,
      port: host.port,
      downloadPort: host.downloadPort,
      type: host.type,
      idc: host.idc,
      location: host.location,
      cluster: host.cluster,
      peerCount: host.peerCount,
      scheduler: host.scheduler,
      lastAnnouncedAtMs: BigInt(host.lastAnnouncedAt === null ? 0 : Date.parse(host.lastAnnouncedAt)),
    })),
    unreachable: result.unreachable.map(schedulerMessage),
  };
}
