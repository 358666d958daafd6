import { GrpcStatus, HostType, RpcError, createClient, schedulerv1, type DownloadSchema, type MessageInitShape, type RpcClient } from "@lacewing/api";
import { ErrorCode, LacewingError, errorMessage, SchedulerEndpoints, rendezvousPick, type LookupAll, type Security } from "@lacewing/common";
import type { HostResult, PreheatScope } from "../jobs/job.js";
import type { HostView, SchedulerStatusView as SchedulerStatus } from "../schema/api-schemas.js";

/** A page of a scheduler's tasks, with the scheduler that answered. */
export interface SchedulerTasks {
  scheduler: string;
  tasks: schedulerv1.TaskStatus[];
}

/** Most tasks read from one scheduler for a listing: enough for any console page, bounded for the manager's memory. */
const MAX_TASKS_PER_SCHEDULER = 10_000;

export type { HostView, SchedulerStatusView as SchedulerStatus } from "../schema/api-schemas.js";

export interface TriggerResult {
  taskId: string;
  hosts: HostResult[];
}

const SCOPES: Record<PreheatScope, schedulerv1.TriggerScope> = {
  single_seed_peer: schedulerv1.TriggerScope.SINGLE_SEED_PEER,
  all_seed_peers: schedulerv1.TriggerScope.ALL_SEED_PEERS,
  all_peers: schedulerv1.TriggerScope.ALL_PEERS,
};

/** How often configured names are looked up again (so scaled scheduler replicas are picked up), and sooner while one fails. */
const RESOLVE_INTERVAL_MS = 30_000;
const RETRY_RESOLVE_MS = 5_000;

type SchedulerClient = RpcClient<typeof schedulerv1.Scheduler>;

/**
 * Clients of every configured scheduler. Names are resolved the way the
 * daemons resolve them (common's SchedulerEndpoints), and a task goes to its
 * owner, chosen by rendezvous hashing of the task id over those endpoints:
 * the rule the daemons use, so the preheated task lands where later
 * downloads look for it.
 */
export class SchedulerPool {
  /** The configured `--scheduler` entries. */
  readonly addresses: readonly string[];
  readonly #schedulers: SchedulerEndpoints<SchedulerClient>;

  constructor(addresses: readonly string[], options: { security: Security; lookup?: LookupAll }) {
    this.addresses = [...addresses];
    this.#schedulers = new SchedulerEndpoints({
      entries: this.addresses,
      connect: (endpoint) => createClient(schedulerv1.Scheduler, endpoint, { security: options.security, serverRoles: ["scheduler"] }),
      refreshMs: RESOLVE_INTERVAL_MS,
      retryMs: RETRY_RESOLVE_MS,
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    });
  }

  /** Resolves the entries now, and again now and then until close(). */
  async start(): Promise<void> {
    await this.#schedulers.start();
  }

  /** The scheduler endpoints (ip:port) tasks are hashed over. */
  get endpoints(): readonly string[] {
    return this.#schedulers.endpoints;
  }

  ownerOf(taskId: string): string {
    const owner = rendezvousPick(taskId, this.endpoints);
    if (owner === undefined)
      throw new LacewingError(
        ErrorCode.managerNoScheduler,
        "failed_precondition",
        this.addresses.length === 0
          ? "no scheduler is configured (--scheduler)"
          : `no scheduler address resolves: ${[...this.#schedulers.unresolved.keys()].join(", ")}`,
      );
    return owner;
  }

  async trigger(
    taskId: string,
    download: MessageInitShape<typeof DownloadSchema>,
    scope: PreheatScope,
    options: { signal: AbortSignal; timeoutMs: number },
  ): Promise<TriggerResult> {
    const response = await this.#schedulers.client(this.ownerOf(taskId)).triggerDownload({ download, scope: SCOPES[scope], wait: true }, options);
    return {
      taskId: response.taskId,
      hosts: response.results.map((r) => ({ hostId: r.hostId, hostname: r.hostname, ip: r.ip, success: r.success, description: r.description })),
    };
  }

  /** Every scheduler's hosts; an unreachable scheduler is reported, not fatal. */
  async listHosts(timeoutMs = 5_000): Promise<{ hosts: HostView[]; schedulers: SchedulerStatus[] }> {
    const answers = await Promise.all(
      this.endpoints.map(async (address) => {
        try {
          // Schedulers answer in pages; a cluster of thousands of nodes takes several.
          const hosts: HostView[] = [];
          let pageToken = "";
          do {
            const response = await this.#schedulers.client(address).listHosts({ pageSize: 1000, pageToken }, { timeoutMs });
            hosts.push(...response.hosts.map((status) => toHostView(status, address)));
            pageToken = response.nextPageToken;
          } while (pageToken !== "");
          return { hosts, status: { address, reachable: true, error: "", hostCount: hosts.length } };
        } catch (err) {
          return { hosts: [], status: { address, reachable: false, error: errorMessage(err), hostCount: 0 } };
        }
      }),
    );
    const unresolved = [...this.#schedulers.unresolved].map(([address, error]) => ({
      address,
      reachable: false,
      error: `cannot resolve: ${error}`,
      hostCount: 0,
    }));
    return { hosts: answers.flatMap((a) => a.hosts), schedulers: [...answers.map((a) => a.status), ...unresolved] };
  }

  /** Every scheduler's tasks (up to MAX_TASKS_PER_SCHEDULER each); an unreachable scheduler is reported, not fatal. */
  async listTasks(options: { taskId?: string; timeoutMs?: number } = {}): Promise<{ answers: SchedulerTasks[]; schedulers: SchedulerStatus[] }> {
    const answers = await Promise.all(
      this.endpoints.map(async (address) => {
        try {
          const tasks: schedulerv1.TaskStatus[] = [];
          let pageToken = "";
          do {
            const response = await this.#schedulers
              .client(address)
              .listTasks({ pageSize: 1000, pageToken, taskId: options.taskId ?? "" }, { timeoutMs: options.timeoutMs ?? 5_000 });
            tasks.push(...response.tasks);
            pageToken = response.nextPageToken;
          } while (pageToken !== "" && tasks.length < MAX_TASKS_PER_SCHEDULER);
          return { answer: { scheduler: address, tasks }, status: { address, reachable: true, error: "", hostCount: 0 } };
        } catch (err) {
          return { answer: undefined, status: { address, reachable: false, error: errorMessage(err), hostCount: 0 } };
        }
      }),
    );
    return {
      answers: answers.flatMap((a) => (a.answer === undefined ? [] : [a.answer])),
      schedulers: answers.map((a) => a.status),
    };
  }

  /**
   * The task's flow from the scheduler that holds one: its owner first (where
   * every daemon reports it), then the others, since an owner that changed
   * with the replica list leaves the record behind.
   */
  async taskFlow(taskId: string, afterSeq: number, timeoutMs = 5_000): Promise<{ scheduler: string; flow: schedulerv1.GetTaskFlowResponse } | undefined> {
    const owner = rendezvousPick(taskId, this.endpoints);
    const order = owner === undefined ? [...this.endpoints] : [owner, ...this.endpoints.filter((e) => e !== owner)];
    for (const address of order) {
      try {
        const flow = await this.#schedulers.client(address).getTaskFlow({ taskId, afterSeq: BigInt(afterSeq) }, { timeoutMs });
        return { scheduler: address, flow };
      } catch (err) {
        if (err instanceof RpcError && err.status === GrpcStatus.NOT_FOUND) continue;
        throw new LacewingError(ErrorCode.managerSchedulerUnavailable, "unavailable", `scheduler ${address} did not answer: ${errorMessage(err)}`, {
          cause: err,
        });
      }
    }
    return undefined;
  }

  close(): void {
    this.#schedulers.close();
  }
}

function toHostView(status: schedulerv1.HostStatus, scheduler: string): HostView {
  const host = status.host;
  const lastMs = Number(status.lastAnnouncedAtMs);
  const intervalSeconds = host?.announceIntervalSeconds ?? 0;
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
    uploadCount: host?.concurrentUploadCount ?? 0,
    uploadLimit: host?.concurrentUploadLimit ?? 0,
    uploadBytes: Number(host?.uploadBytes ?? 0n),
    uploadBytesPerSecond: Number(status.uploadBytesPerSecond),
    cacheBytes: Number(host?.cacheBytes ?? 0n),
    cacheQuotaBytes: Number(host?.cacheQuotaBytes ?? 0n),
    announceIntervalSeconds: intervalSeconds,
    lastAnnouncedAt: lastMs > 0 ? new Date(lastMs).toISOString() : null,
    // The scheduler's own rule (twice the interval; 30 s when a host says none); a scheduler drops such hosts at its next GC.
    alive: lastMs > 0 && Date.now() - lastMs <= 2 * (intervalSeconds || 30) * 1000,
    scheduler,
  };
}
