import { HostType, callerIp, requireRole, schedulerv1, type CallContext, type ServiceImpl } from "@lacewing/api";
import { ErrorCode, LacewingError, MEMBER_ROLES, errorMessage, persistentCacheMessageOf, rendezvousPick, taskIdOf } from "@lacewing/common";
import { isHostAlive, ownsHost, type HostOwner, type HostRecord } from "../resource/host.js";
import type { SeedTrigger } from "../seed/seed-trigger.js";
import { noteSourceLost } from "../scheduling/scheduling.js";
import { announcePeerStream, type AnnouncePeerDeps } from "./announce-peer.js";
import { taskInfoOf } from "./responses.js";
import { listTasksPage, taskFlowOf, taskStateOf } from "./task-views.js";
import { checkDownload, checkHost, checkId, checkTaskId } from "./validate.js";

export interface SchedulerServiceDeps extends AnnouncePeerDeps {
  readonly seedTrigger: SeedTrigger;
  /** The address the scheduler was started with, reported by ListHosts. */
  readonly address: () => string;
  /** Most host ids one owner (certificate and address) may announce. */
  readonly maxHostsPerOwner: number;
}

const { TriggerScope } = schedulerv1;
const LIST_HOSTS_PAGE = { default: 500, max: 1000 } as const;

/**
 * The Scheduler gRPC service over the in-memory resource registry. Who may
 * call what: cluster members (seed and peer certificates) announce their own
 * hosts and peers — a host id belongs to the certificate and address that
 * first announced it, and only a seed certificate announces a seed; the
 * manager makes the admin calls (trigger, list, delete anything). See
 * docs/ARCHITECTURE.md, "Trust model".
 */
export function createSchedulerService(deps: SchedulerServiceDeps): ServiceImpl<typeof schedulerv1.Scheduler> {
  const { registry, logger } = deps;
  return {
    async announceHost(request, context) {
      const caller = requireRole(context, MEMBER_ROLES, "AnnounceHost");
      const info = checkHost(request.host);
      if (info.type === HostType.SEED && caller !== undefined && caller.role !== "seed")
        throw new LacewingError(ErrorCode.permissionDenied, "permission_denied", "only a seed certificate may announce a seed peer");
      const owner = ownerOf(context);
      const known = registry.hosts.get(info.id);
      if (known !== undefined && !ownsHost(known, owner))
        throw new LacewingError(ErrorCode.permissionDenied, "permission_denied", `host ${info.id} belongs to another identity`);
      if (known === undefined && owner !== undefined) {
        const owned = registry.hostsOwnedBy(owner);
        if (owned >= deps.maxHostsPerOwner)
          throw new LacewingError(ErrorCode.tooManyHosts, "resource_exhausted", `${owner.subject} at ${owner.ip} already announced ${owned} hosts`);
      }
      if (known === undefined) logger.info({ hostId: info.id, ip: info.ip, type: HostType[info.type] }, "host joined");
      else if (known.info.ip !== info.ip || known.info.port !== info.port) deps.seedTrigger.forget(info.id);
      registry.announceHost(info, deps.now(), owner);
      // A new host may be the seed or parent some child is waiting for.
      registry.wakeWaiting();
      return { newHost: known === undefined };
    },

    announcePeer(requests, context) {
      requireRole(context, MEMBER_ROLES, "AnnouncePeer");
      return announcePeerStream(deps, requests, context.signal, ownerOf(context));
    },

    async statTask(request, context) {
      requireRole(context, [...MEMBER_ROLES, "manager"], "StatTask");
      checkTaskId(request.taskId);
      const task = registry.tasks.get(request.taskId);
      if (task === undefined) throw new LacewingError(ErrorCode.taskNotFound, "not_found", `task ${request.taskId} is not known to this scheduler`);
      const peers = [...task.peers.values()];
      const finished = peers.filter((peer) => peer.state === "succeeded").length;
      const persistent =
        task.persistent === undefined
          ? undefined
          : (() => {
              const held = deps.persistent.status(task).held;
              return { cache: persistentCacheMessageOf(task.persistent), replicasHeld: held.length, holderHostIds: held };
            })();
      return {
        info: taskInfoOf(task),
        state: taskStateOf(task),
        peerCount: peers.length,
        finishedPeerCount: finished,
        ...(persistent === undefined ? {} : { persistent }),
      };
    },

    async deletePersistentTask(request, context) {
      // Any cluster member may delete a persistent cache task, as any node may import one (dfcache on that node); the manager too.
      requireRole(context, [...MEMBER_ROLES, "manager"], "DeletePersistentTask");
      checkTaskId(request.taskId);
      const task = registry.tasks.get(request.taskId);
      if (task?.persistent === undefined)
        throw new LacewingError(ErrorCode.cacheNotFound, "not_found", `no persistent cache task ${request.taskId} is known to this scheduler`);
      return { holders: deps.persistent.remove(task, "deleted") };
    },

    async deletePeer(request, context) {
      checkTaskId(request.taskId);
      checkId("peer_id", request.peerId);
      const task = registry.tasks.get(request.taskId);
      const peer = task?.peers.get(request.peerId);
      authorizeHostCall(deps, context, peer?.hostId, "DeletePeer");
      if (task !== undefined && peer !== undefined) {
        noteSourceLost(task, peer);
        registry.removePeer(task, peer.id);
        logger.debug({ taskId: task.id, peerId: peer.id }, "peer deleted");
      }
      return {};
    },

    async deleteTask(request, context) {
      checkId("host_id", request.hostId);
      checkTaskId(request.taskId);
      authorizeHostCall(deps, context, request.hostId, "DeleteTask");
      const task = registry.tasks.get(request.taskId);
      if (task !== undefined) {
        for (const peer of [...task.peers.values()]) if (peer.hostId === request.hostId) noteSourceLost(task, peer);
        // The host let go of its copy: a bad one is gone, so the host may hold the task again.
        task.taintedHosts.delete(request.hostId);
      }
      const removed = registry.deleteTaskOnHost(request.hostId, request.taskId);
      // A holder that let go of a persistent task's copy leaves it short of replicas.
      if (task?.persistent !== undefined) deps.persistent.kick();
      if (task !== undefined) registry.dropIfUnused(task);
      if (removed > 0) logger.debug({ taskId: request.taskId, hostId: request.hostId, peers: removed }, "task deleted on host");
      return {};
    },

    async deleteHost(request, context) {
      checkId("host_id", request.hostId);
      authorizeHostCall(deps, context, request.hostId, "DeleteHost");
      forgetHost(deps, request.hostId);
      return {};
    },

    async triggerDownload(request, context) {
      requireRole(context, ["manager"], "TriggerDownload");
      const download = checkDownload(request.download);
      const taskId = taskIdOf({
        url: download.url,
        tag: download.tag,
        application: download.application,
        filteredQueryParams: download.filteredQueryParams,
        sourceVersion: download.sourceVersion,
      });
      const hosts = hostsForScope(deps, taskId, request.scope);
      if (hosts.length === 0)
        throw new LacewingError(
          ErrorCode.noHosts,
          "failed_precondition",
          request.scope === TriggerScope.ALL_PEERS ? "no alive hosts to trigger" : "no alive seed peers to trigger",
        );
      logger.info({ taskId, scope: TriggerScope[request.scope], hosts: hosts.map((h) => h.id), wait: request.wait }, "triggering download");
      const timeoutMs = download.timeoutMs > 0n ? Number(download.timeoutMs) : undefined;
      const results = await Promise.all(
        hosts.map(async (host) => {
          const base = { hostId: host.id, hostname: host.info.hostname, ip: host.info.ip };
          try {
            const response = await deps.seedTrigger.trigger(host, download, {
              wait: request.wait,
              signal: context.signal,
              ...(timeoutMs === undefined ? {} : { timeoutMs }),
            });
            const success = !request.wait || response.finished;
            return { ...base, success, description: response.description };
          } catch (err) {
            logger.warn({ taskId, hostId: host.id, err: errorMessage(err) }, "download trigger failed");
            return { ...base, success: false, description: errorMessage(err) };
          }
        }),
      );
      return { taskId, results };
    },

    async listHosts(request, context) {
      requireRole(context, ["manager"], "ListHosts");
      const pageSize = Math.min(LIST_HOSTS_PAGE.max, request.pageSize || LIST_HOSTS_PAGE.default);
      const after = request.pageToken === "" ? "" : Buffer.from(request.pageToken, "base64url").toString("utf8");
      const ids = [...registry.hosts.keys()].filter((id) => id > after).sort();
      const page = ids.slice(0, pageSize);
      return {
        hosts: page.map((id) => {
          const host = registry.hosts.get(id)!;
          return {
            host: host.info,
            lastAnnouncedAtMs: BigInt(host.lastAnnouncedAt),
            peerCount: host.peers.size,
            uploadBytesPerSecond: BigInt(Math.round(host.uploadRate)),
          };
        }),
        schedulerAddress: deps.address(),
        nextPageToken: ids.length > pageSize ? Buffer.from(page[page.length - 1]!, "utf8").toString("base64url") : "",
      };
    },

    async listTasks(request, context) {
      requireRole(context, ["manager"], "ListTasks");
      return listTasksPage(registry, deps.flow, request);
    },

    async getTaskFlow(request, context) {
      requireRole(context, ["manager"], "GetTaskFlow");
      return taskFlowOf(deps.flow, request);
    },
  };
}

/** The caller as a host owner: its certificate's subject and the address it called from; undefined when insecure. */
function ownerOf(context: CallContext): HostOwner | undefined {
  return context.caller === undefined ? undefined : { subject: context.caller.subject, ip: callerIp(context) };
}

/** A call about one host: the manager may make it for any host, a member only for a host it owns. */
function authorizeHostCall(deps: SchedulerServiceDeps, context: CallContext, hostId: string | undefined, action: string): void {
  const caller = requireRole(context, [...MEMBER_ROLES, "manager"], action);
  if (caller === undefined || caller.role === "manager" || hostId === undefined) return;
  const host = deps.registry.hosts.get(hostId);
  if (host !== undefined && !ownsHost(host, ownerOf(context)))
    throw new LacewingError(ErrorCode.permissionDenied, "permission_denied", `${action}: host ${hostId} belongs to another identity`);
}

function hostsForScope(deps: SchedulerServiceDeps, taskId: string, scope: schedulerv1.TriggerScope): HostRecord[] {
  const now = deps.now();
  if (scope === TriggerScope.ALL_PEERS) return [...deps.registry.hosts.values()].filter((host) => isHostAlive(host, now));
  const seeds = deps.registry.aliveSeedHosts(now);
  if (scope === TriggerScope.ALL_SEED_PEERS) return seeds;
  // Single seed peer (also the default): the same seed the scheduler would pick for the task.
  const chosen = rendezvousPick(
    taskId,
    seeds.map((host) => host.id),
  );
  return seeds.filter((host) => host.id === chosen);
}

/** Drops a host with all its peers, at once. */
export function forgetHost(deps: Pick<SchedulerServiceDeps, "registry" | "seedTrigger" | "logger">, hostId: string): void {
  const host = deps.registry.hosts.get(hostId);
  if (host === undefined) return;
  for (const [peerId, taskId] of host.peers) {
    const task = deps.registry.tasks.get(taskId);
    const peer = task?.peers.get(peerId);
    if (task !== undefined && peer !== undefined) noteSourceLost(task, peer);
  }
  deps.registry.deleteHost(hostId);
  deps.seedTrigger.forget(hostId);
  deps.logger.info({ hostId }, "host removed");
}
