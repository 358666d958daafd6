import { createClient, dfdaemonv1, type DownloadSchema, type MessageInitShape, type RpcClient } from "@lacewing/api";
import { MEMBER_ROLES, persistentCacheMessageOf, type PersistentCacheMeta, type Security } from "@lacewing/common";
import { isSeedHost, type HostRecord } from "../resource/host.js";

type PeerClient = RpcClient<typeof dfdaemonv1.DfdaemonPeer>;

/** How long a trigger without `wait` may take: the daemon only has to accept it. */
const ACCEPT_TIMEOUT_MS = 10_000;

export interface TriggerOptions {
  /** Answer only once the host finished (or failed) the download. */
  wait: boolean;
  /** Overall deadline in ms; defaults to ACCEPT_TIMEOUT_MS without wait, none with it. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Calls DfdaemonPeer.TriggerDownload on hosts, keeping one client (one
 * HTTP/2 connection) per host so repeated triggers do not reconnect.
 */
export class SeedTrigger {
  readonly #clients = new Map<string, { address: string; client: PeerClient }>();
  readonly #security: Security;

  constructor(security: Security) {
    this.#security = security;
  }

  async trigger(host: HostRecord, download: MessageInitShape<typeof DownloadSchema>, options: TriggerOptions): Promise<dfdaemonv1.TriggerDownloadResponse> {
    const client = this.#clientFor(host);
    const timeoutMs = options.timeoutMs ?? (options.wait ? undefined : ACCEPT_TIMEOUT_MS);
    return client.triggerDownload(
      { download: { ...download, triggered: true }, wait: options.wait },
      { ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(options.signal === undefined ? {} : { signal: options.signal }) },
    );
  }

  /**
   * Orders `host` to download a replica of a persistent cache task from its
   * holders, peer-to-peer only (the task has no origin). Answers once the
   * daemon accepted.
   */
  async triggerPersistent(host: HostRecord, taskId: string, cache: PersistentCacheMeta): Promise<void> {
    const response = await this.#clientFor(host).triggerDownload(
      { persistentTaskId: taskId, persistent: persistentCacheMessageOf(cache), wait: false },
      { timeoutMs: ACCEPT_TIMEOUT_MS },
    );
    if (response.description !== "accepted") throw new Error(response.description || "the daemon did not accept the replica");
  }

  /** Orders `host` to delete its copy of a persistent cache task. */
  async deletePersistent(host: HostRecord, taskId: string): Promise<void> {
    await this.#clientFor(host).deletePersistentTask({ taskId }, { timeoutMs: ACCEPT_TIMEOUT_MS });
  }

  /** Forgets a host's client (the host left or moved). */
  forget(hostId: string): void {
    this.#clients.get(hostId)?.client.close();
    this.#clients.delete(hostId);
  }

  close(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #clientFor(host: HostRecord): PeerClient {
    const address = `${host.info.ip.includes(":") ? `[${host.info.ip}]` : host.info.ip}:${host.info.port}`;
    const cached = this.#clients.get(host.id);
    if (cached !== undefined && cached.address === address) return cached.client;
    cached?.client.close();
    // The download may carry the child's credentials: they go only to a daemon that proves it is what it announced.
    const serverRoles = isSeedHost(host) ? (["seed"] as const) : MEMBER_ROLES;
    const client = createClient(dfdaemonv1.DfdaemonPeer, address, { security: this.#security, serverRoles });
    this.#clients.set(host.id, { address, client });
    return client;
  }
}
