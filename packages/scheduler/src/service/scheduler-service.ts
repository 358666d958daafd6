import { HostType, schedulerv1, type ServiceImpl } from "@lacewing/api";
import { LacewingError, errorMessage, rendezvousPick, taskIdOf } from "@lacewing/common";
import { isHostAlive, isSeedHost, type HostRecord } from "../resource/host.js";
import type { SeedTrigger } from "../seed/seed-trigger.js";
import { noteSourceLost } from "../scheduling/scheduling.js";
import { announcePeerStream, type AnnouncePeerDeps } from "./announce-peer.js";
import { taskInfoOf } from "./responses.js";

export interface SchedulerServiceDeps extends AnnouncePeerDeps {
  readonly seedTrigger: SeedTrigger;
  /** The address the scheduler was started with, reported by ListHosts. */
  readonly address: () => string;
}

const { TaskState, TriggerScope } = schedulerv1;

/** The Scheduler gRPC service over the in-memory resource registry. */
export function createSchedulerService(deps: SchedulerServiceDeps): ServiceImpl<typeof schedulerv1.Scheduler> {
  const { registry, logger } = deps;
  return {
    async announceHost(request) {
      const info = request.host;
      if (info === undefined || info.id === "" || info.ip === "")
        throw new LacewingError("LW_ERR_BAD_REQUEST", "invalid_argument", "AnnounceHost needs a host with an id and an ip");
      const known = registry.hosts.get(info.id);
      if (known === undefined) logger.info({ hostId: info.id, ip: info.ip, type: HostType[info.type] }, "host joined");
      else if (known.info.ip !== info.ip || known.info.port !== info.port) deps.seedTrigger.forget(info.id);
      registry.announceHost(info, deps.now());
      // A new host may be the seed or parent some child is waiting for.
      for (const task of registry.tasks.values()) if (task.waiters.size > 0) for (const wake of [...task.waiters]) wake();
      return { newHost: known === undefined };
    },

    announcePeer(requests, context) {
      return announcePeerStream(deps, requests, context.signal);
    },

    async statTask(request) {
      const task = registry.tasks.get(request.taskId);
      if (task === undefined) throw new LacewingError("LW_ERR_TASK_NOT_FOUND", "not_found", `task ${request.taskId} is not known to this scheduler`);
      const peers = [...task.peers.values()];
      const finished = peers.filter((peer) => peer.state === "succeeded").length;
      const running = peers.some((peer) => peer.state === "running" || peer.state === "back_to_source");
      const state =
        finished > 0
          ? TaskState.SUCCEEDED
          : running
            ? TaskState.RUNNING
            : peers.length > 0 && peers.every((peer) => peer.state === "failed")
              ? TaskState.FAILED
              : TaskState.PENDING;
      return { info: taskInfoOf(task), state, peerCount: peers.length, finishedPeerCount: finished };
    },

    async deletePeer(request) {
      const task = registry.tasks.get(request.taskId);
      const peer = task?.peers.get(request.peerId);
      if (task !== undefined && peer !== undefined) {
        noteSourceLost(task, peer);
        registry.removePeer(task, peer.id);
        logger.debug({ taskId: task.id, peerId: peer.id }, "peer deleted");
      }
      return {};
    },

    async deleteTask(request) {
      const task = registry.tasks.get(request.taskId);
      if (task !== undefined) {
        for (const peer of [...task.peers.values()]) if (peer.hostId === request.hostId) noteSourceLost(task, peer);
      }
      const removed = registry.deleteTaskOnHost(request.hostId, request.taskId);
      if (removed > 0) logger.debug({ taskId: request.taskId, hostId: request.hostId, peers: removed }, "task deleted on host");
      return {};
    },

    async deleteHost(request) {
      forgetHost(deps, request.hostId);
      return {};
    },

    async triggerDownload(request, context) {
      const download = request.download;
      if (download === undefined || download.url === "")
        throw new LacewingError("LW_ERR_BAD_REQUEST", "invalid_argument", "TriggerDownload needs a download with a url");
      const taskId = taskIdOf({ url: download.url, tag: download.tag, application: download.application, filteredQueryParams: download.filteredQueryParams });
      const hosts = hostsForScope(deps, taskId, request.scope);
      if (hosts.length === 0)
        throw new LacewingError(
          "LW_ERR_NO_HOSTS",
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

    async listHosts() {
      return {
        hosts: [...registry.hosts.values()].map((host) => ({
          host: host.info,
          lastAnnouncedAtMs: BigInt(host.lastAnnouncedAt),
          peerCount: host.peers.size,
        })),
        schedulerAddress: deps.address(),
      };
    },
  };
}

function hostsForScope(deps: SchedulerServiceDeps, taskId: string, scope: schedulerv1.TriggerScope): HostRecord[] {
  const now = deps.now();
  const alive = [...deps.registry.hosts.values()].filter((host) => isHostAlive(host, now));
  if (scope === TriggerScope.ALL_PEERS) return alive;
  const seeds = alive.filter(isSeedHost);
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
