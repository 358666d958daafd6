import { HostType, createClient, schedulerv1, type DownloadSchema, type MessageInitShape, type RpcClient } from "@lacewing/api";
import { LacewingError, errorMessage, rendezvousPick } from "@lacewing/common";
import type { HostResult, PreheatScope } from "../jobs/job.js";

export interface HostView {
  id: string;
  hostname: string;
  ip: string;
  port: number;
  downloadPort: number;
  type: "normal" | "seed";
  idc: string;
  location: string;
  cluster: string;
  peerCount: number;
  lastAnnouncedAt: Date | null;
  /** The scheduler that reported the host. */
  scheduler: string;
}

export interface SchedulerStatus {
  address: string;
  reachable: boolean;
  error: string;
  hostCount: number;
}

export interface TriggerResult {
  taskId: string;
  hosts: HostResult[];
}

const SCOPES: Record<PreheatScope, schedulerv1.TriggerScope> = {
  single_seed_peer: schedulerv1.TriggerScope.SINGLE_SEED_PEER,
  all_seed_peers: schedulerv1.TriggerScope.ALL_SEED_PEERS,
  all_peers: schedulerv1.TriggerScope.ALL_PEERS,
};

/**
 * Clients of every configured scheduler. A task goes to its owner, chosen by
 * rendezvous hashing of the task id over the addresses: the rule the daemons
 * use, so the preheated task lands where later downloads look for it.
 */
export class SchedulerPool {
  readonly addresses: readonly string[];
  readonly #clients = new Map<string, RpcClient<typeof schedulerv1.Scheduler>>();

  constructor(addresses: readonly string[]) {
    this.addresses = [...addresses];
  }

  ownerOf(taskId: string): string {
    const owner = rendezvousPick(taskId, this.addresses);
    if (owner === undefined) throw new LacewingError("LW_ERR_MANAGER_NO_SCHEDULER", "failed_precondition", "no scheduler is configured (--scheduler)");
    return owner;
  }

  async trigger(
    taskId: string,
    download: MessageInitShape<typeof DownloadSchema>,
    scope: PreheatScope,
    options: { signal: AbortSignal; timeoutMs: number },
  ): Promise<TriggerResult> {
    const response = await this.#client(this.ownerOf(taskId)).triggerDownload({ download, scope: SCOPES[scope], wait: true }, options);
    return {
      taskId: response.taskId,
      hosts: response.results.map((r) => ({ hostId: r.hostId, hostname: r.hostname, ip: r.ip, success: r.success, description: r.description })),
    };
  }

  /** Every scheduler's hosts; an unreachable scheduler is reported, not fatal. */
  async listHosts(timeoutMs = 5_000): Promise<{ hosts: HostView[]; schedulers: SchedulerStatus[] }> {
    const answers = await Promise.all(
      this.addresses.map(async (address) => {
        try {
          const response = await this.#client(address).listHosts({}, { timeoutMs });
          const hosts = response.hosts.map((status) => toHostView(status, address));
          return { hosts, status: { address, reachable: true, error: "", hostCount: hosts.length } };
        } catch (err) {
          return { hosts: [], status: { address, reachable: false, error: errorMessage(err), hostCount: 0 } };
        }
      }),
    );
    return { hosts: answers.flatMap((a) => a.hosts), schedulers: answers.map((a) => a.status) };
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #client(address: string): RpcClient<typeof schedulerv1.Scheduler> {
    let client = this.#clients.get(address);
    if (client === undefined) {
      client = createClient(schedulerv1.Scheduler, address);
      this.#clients.set(address, client);
    }
    return client;
  }
}

function toHostView(status: schedulerv1.HostStatus, scheduler: string): HostView {
  const host = status.host;
  const lastMs = Number(status.lastAnnouncedAtMs);
  return {
    id: host?.id ?? "",
    hostname: host?.hostname ?? "",
    ip: host?.ip ?? "",
    port: host?.port ?? 0,
    downloadPort: host?.downloadPort ?? 0,
    type: host?.type === HostType.SEED ? "seed" : "normal",
    idc: host?.idc ?? "",
    location: host?.location ?? "",
    cluster: host?.cluster ?? "",
    peerCount: status.peerCount,
    lastAnnouncedAt: lastMs > 0 ? new Date(lastMs) : null,
    scheduler,
  };
}
