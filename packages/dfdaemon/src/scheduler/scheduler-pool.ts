import { createClient, schedulerv1, type HostSchema, type MessageInitShape, type RpcClient } from "@lacewing/api";
import { SchedulerEndpoints, backoffDelay, errorMessage, rendezvousOrder, type Logger, type Security } from "@lacewing/common";

export type SchedulerClient = RpcClient<typeof schedulerv1.Scheduler>;
export type HostInit = MessageInitShape<typeof HostSchema>;

export interface SchedulerPoolOptions {
  /** This daemon's certificate; schedulers must present a scheduler's. */
  security: Security;
  /** `--scheduler` entries, HOST:PORT each. */
  entries: string[];
  /** The host facts announced, read at every announcement. */
  hostInfo: () => HostInit;
  announceIntervalMs: number;
  log: Logger;
  /** A scheduler learned of this host afresh (first contact or its restart): tell it what the cache holds. */
  onNewHost: (endpoint: string) => void;
}

/** What the daemon knows of one scheduler endpoint, for `dfdaemon status`. */
export interface SchedulerState {
  address: string;
  reachable: boolean;
  lastError: string;
}

const ANNOUNCE_TIMEOUT_MS = 5_000;
/** Consecutive failed announcements before a scheduler stops owning its tasks. */
const DOWN_AFTER_FAILURES = 2;

/**
 * The schedulers this daemon talks to. Each endpoint gets its own announce
 * loop (the host must be known to every replica, since tasks are spread over
 * them) that retries with backoff while the scheduler is down and logs only
 * when reachability changes. A task belongs to the endpoint that rendezvous
 * hashing of its id picks; while that one is unreachable the next in
 * rendezvous order stands in.
 */
export class SchedulerPool {
  readonly #options: SchedulerPoolOptions;
  readonly #schedulers: SchedulerEndpoints<SchedulerClient>;
  readonly #states = new Map<string, SchedulerState & { failures: number; timer?: NodeJS.Timeout; announcing?: Promise<boolean> | undefined }>();
  #closed = false;

  constructor(options: SchedulerPoolOptions) {
    this.#options = options;
    this.#schedulers = new SchedulerEndpoints({
      entries: options.entries,
      connect: (endpoint) => createClient(schedulerv1.Scheduler, endpoint, { security: options.security, serverRoles: ["scheduler"] }),
      // Names are looked up again now and then, so scaled scheduler replicas are picked up.
      refreshMs: Math.max(30_000, options.announceIntervalMs * 3),
      retryMs: Math.min(5_000, options.announceIntervalMs),
      log: options.log,
      onChange: ({ added, removed }) => this.#onEndpointsChanged(added, removed),
    });
  }

  get configured(): boolean {
    return this.#schedulers.configured;
  }

  /** Resolves the entries and starts announcing; returns without waiting for any scheduler. */
  async start(): Promise<void> {
    await this.#schedulers.start();
  }

  /** The scheduler endpoints known right now. */
  get endpoints(): readonly string[] {
    return this.#schedulers.endpoints;
  }

  /** Endpoints in the order a task should try them: its owner first, unreachable ones last. */
  ownersOf(taskId: string): string[] {
    const order = rendezvousOrder(taskId, this.endpoints);
    // One slow announce on a loaded node must not move tasks to a stand-in: demote after two failures in a row.
    const down = (endpoint: string): boolean => (this.#states.get(endpoint)?.failures ?? 0) >= DOWN_AFTER_FAILURES;
    return [...order.filter((endpoint) => !down(endpoint)), ...order.filter(down)];
  }

  client(endpoint: string): SchedulerClient {
    return this.#schedulers.client(endpoint);
  }

  /** Announces the host to `endpoint` now (a register met a scheduler that forgot the host); true on success. */
  announceNow(endpoint: string): Promise<boolean> {
    const state = this.#states.get(endpoint);
    if (state === undefined) return Promise.resolve(false);
    return this.#announce(endpoint, state);
  }

  status(): SchedulerState[] {
    const states: SchedulerState[] = [...this.#states.values()].map(({ address, reachable, lastError }) => ({ address, reachable, lastError }));
    for (const [entry, error] of this.#schedulers.unresolved) states.push({ address: entry, reachable: false, lastError: `cannot resolve: ${error}` });
    return states;
  }

  /** Tells every reachable scheduler that this host no longer holds `taskId` (it was evicted). */
  async deleteTask(hostId: string, taskId: string): Promise<void> {
    await Promise.all(
      this.endpoints.map((endpoint) =>
        this.client(endpoint)
          .deleteTask({ hostId, taskId }, { timeoutMs: ANNOUNCE_TIMEOUT_MS })
          .catch((err: unknown) => this.#options.log.debug({ scheduler: endpoint, taskId, err: errorMessage(err) }, "DeleteTask failed")),
      ),
    );
  }

  /** Says goodbye (DeleteHost) to reachable schedulers and stops announcing. */
  async close(hostId: string): Promise<void> {
    this.#closed = true;
    for (const state of this.#states.values()) clearTimeout(state.timer);
    await Promise.all(
      [...this.#states.values()]
        .filter((state) => state.reachable)
        .map((state) =>
          this.client(state.address)
            .deleteHost({ hostId }, { timeoutMs: 2_000 })
            .catch(() => undefined),
        ),
    );
    this.#schedulers.close();
  }

  /** Each endpoint gets its own announce loop while it is listed. */
  #onEndpointsChanged(added: string[], removed: string[]): void {
    for (const endpoint of added) {
      const state = { address: endpoint, reachable: false, lastError: "not contacted yet", failures: 0 };
      this.#states.set(endpoint, state);
      this.#schedule(endpoint, state, 0);
    }
    for (const endpoint of removed) {
      clearTimeout(this.#states.get(endpoint)?.timer);
      this.#states.delete(endpoint);
    }
  }

  #schedule(endpoint: string, state: SchedulerState & { failures: number; timer?: NodeJS.Timeout }, delayMs: number): void {
    if (this.#closed) return;
    state.timer = setTimeout(() => {
      void this.#announce(endpoint, state).then((ok) => {
        if (this.#states.get(endpoint) !== state) return;
        const delay = ok ? this.#options.announceIntervalMs : backoffDelay(state.failures - 1, { initialMs: 500, maxMs: this.#options.announceIntervalMs });
        this.#schedule(endpoint, state, delay);
      });
    }, delayMs);
    state.timer.unref();
  }

  #announce(endpoint: string, state: SchedulerState & { failures: number; announcing?: Promise<boolean> | undefined }): Promise<boolean> {
    state.announcing ??= this.#announceOnce(endpoint, state).finally(() => (state.announcing = undefined));
    return state.announcing;
  }

  async #announceOnce(endpoint: string, state: SchedulerState & { failures: number }): Promise<boolean> {
    const { log } = this.#options;
    try {
      const response = await this.client(endpoint).announceHost({ host: this.#options.hostInfo() }, { timeoutMs: ANNOUNCE_TIMEOUT_MS });
      if (!state.reachable) log.info({ scheduler: endpoint }, "scheduler reachable");
      state.reachable = true;
      state.lastError = "";
      state.failures = 0;
      if (response.newHost) this.#options.onNewHost(endpoint);
      return true;
    } catch (err) {
      const message = errorMessage(err);
      // One line when a scheduler goes away, not one per retry.
      if (state.reachable || state.failures === 0) log.warn({ scheduler: endpoint, err: message }, "scheduler unreachable; retrying with backoff");
      else log.debug({ scheduler: endpoint, err: message }, "scheduler still unreachable");
      state.reachable = false;
      state.lastError = message;
      state.failures++;
      return false;
    }
  }
}
