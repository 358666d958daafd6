import { RpcServer, schedulerv1 } from "@lacewing/api";
import { ErrorCode, LacewingError, createLogger, errorMessage, securityOf, type Logger, type Security } from "@lacewing/common";
import { loadSchedulerConfig, type SchedulerConfig } from "./config.js";
import { createSchedulerMetrics, type SchedulerMetrics } from "./metrics/metrics.js";
import { MetricsServer } from "@lacewing/common";
import { FlowRecorder } from "./flow/flow-recorder.js";
import { isHostAlive } from "./resource/host.js";
import { ResourceRegistry } from "./resource/resource-registry.js";
import { PersistentKeeper } from "./persistent/persistent-keeper.js";
import { SeedTrigger } from "./seed/seed-trigger.js";
import { createSchedulerService, forgetHost, type SchedulerServiceDeps } from "./service/scheduler-service.js";

export interface SchedulerServerOptions {
  /** Config values; anything left out takes the schema default. */
  config?: Partial<SchedulerConfig>;
  /** Defaults to a pino logger at config.logLevel on stderr. */
  logger?: Logger;
  /** Serve /metrics, /healthz, /readyz on config.metricsPort. Default false (tests). */
  serveMetrics?: boolean;
  /** Process-wide default metrics (event loop, memory) under lacewing_scheduler_; off when several schedulers share a process. */
  defaultMetrics?: boolean;
  /** Host the metrics server binds; default "0.0.0.0". */
  metricsHost?: string;
  /** Clock for host liveness, ms since the epoch; tests move it forward. */
  now?: () => number;
  /** Source of the scheduling jitter. */
  random?: () => number;
  /** TLS material given directly (tests); otherwise it comes from config.tlsDir / config.insecure. */
  security?: Security;
}

/** A task nobody holds or waits for is forgotten after this long (tainted tasks are kept until then). */
const STALE_TASK_MS = 60 * 60_000;

/**
 * The lacewing scheduler: a gRPC server over an in-memory view of hosts,
 * tasks and peers, plus the host GC and (optionally) the metrics endpoint.
 *
 * ```ts
 * const scheduler = new SchedulerServer({ config: { listen: "127.0.0.1:0" } });
 * await scheduler.start();
 * console.log(scheduler.address); // "127.0.0.1:41234"
 * await scheduler.close();
 * ```
 */
export class SchedulerServer {
  readonly config: SchedulerConfig;
  readonly registry = new ResourceRegistry();
  /** The recent flow of each task's pieces, for the manager's console. */
  readonly flow = new FlowRecorder();
  readonly metrics: SchedulerMetrics;
  /** Persistent cache tasks (dfcache): replica counts, expiry, deletion. */
  readonly persistent: PersistentKeeper;
  readonly #logger: Logger;
  readonly security: Security;
  readonly #rpc: RpcServer;
  readonly #seedTrigger: SeedTrigger;
  readonly #metricsServer: MetricsServer | undefined;
  readonly #metricsHost: string;
  readonly #deps: SchedulerServiceDeps;
  #gcTimer: NodeJS.Timeout | undefined;
  #port = 0;
  #started = false;

  constructor(options: SchedulerServerOptions = {}) {
    const defaults = loadSchedulerConfig({ env: {} });
    this.config = { ...defaults, ...stripUndefined(options.config ?? {}) };
    this.#logger = options.logger ?? createLogger({ name: "lacewing-scheduler", level: this.config.logLevel });
    this.security = options.security ?? securityOf(this.config, { role: "scheduler", listen: [this.config.listen], log: this.#logger });
    this.#rpc = new RpcServer({ security: this.security });
    this.#seedTrigger = new SeedTrigger(this.security);
    this.metrics = createSchedulerMetrics(this.registry, { defaultMetrics: options.defaultMetrics ?? false });
    this.#metricsServer = options.serveMetrics === true ? new MetricsServer(this.metrics.registry, () => this.#started) : undefined;
    this.#metricsHost = options.metricsHost ?? "0.0.0.0";
    const seedTrigger = this.#seedTrigger;
    const now = options.now ?? Date.now;
    this.persistent = new PersistentKeeper({
      registry: this.registry,
      logger: this.#logger,
      now,
      placeReplica: (host, task, persistent) => seedTrigger.triggerPersistent(host, task.id, persistent),
      orderDelete: (host, taskId) => seedTrigger.deletePersistent(host, taskId),
    });
    this.#deps = {
      registry: this.registry,
      options: {
        candidateParentLimit: this.config.candidateParentLimit,
        maxReschedules: this.config.maxReschedules,
        scheduleTimeoutMs: this.config.scheduleTimeout,
        topology: this.config.topology,
        crossZoneOnce: this.config.crossZoneOnce,
      },
      logger: this.#logger,
      now,
      persistent: this.persistent,
      random: options.random ?? Math.random,
      metrics: this.metrics,
      seedTrigger,
      maxPeersPerHost: this.config.maxPeersPerHost,
      flow: this.flow,
      maxHostsPerOwner: this.config.maxHostsPerOwner,
      address: () => this.address,
      async triggerSeed(host, _task, download) {
        await seedTrigger.trigger(host, download, { wait: false });
      },
    };
    this.#rpc.add(schedulerv1.Scheduler, createSchedulerService(this.#deps));
  }

  /** The bound gRPC port (after start). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` as bound, e.g. "127.0.0.1:41234" (after start). */
  get address(): string {
    const listen = this.config.listen;
    return `${listen.slice(0, listen.lastIndexOf(":"))}:${this.#port}`;
  }

  /** The metrics server's bound port, or 0 when not serving metrics. */
  get metricsPort(): number {
    return this.#metricsServer?.port ?? 0;
  }

  async start(): Promise<void> {
    try {
      this.#port = await this.#rpc.listen(this.config.listen);
    } catch (err) {
      const reason = /EADDRINUSE/.test(errorMessage(err)) ? "address already in use" : errorMessage(err);
      throw new LacewingError(ErrorCode.listen, "unavailable", `cannot listen on ${this.config.listen}: ${reason}`, { cause: err });
    }
    if (this.#metricsServer !== undefined) await this.#metricsServer.listen(this.#metricsHost, this.config.metricsPort);
    this.#gcTimer = setInterval(() => this.collectGarbage(), this.config.gcInterval);
    this.#gcTimer.unref();
    this.#started = true;
    this.#logger.info({ address: this.address, metricsPort: this.metricsPort }, "scheduler started");
  }

  /** Drops hosts that stopped announcing, with their peers. Runs periodically; callable from tests. */
  collectGarbage(): void {
    try {
      const now = this.#deps.now();
      for (const host of [...this.registry.hosts.values()]) {
        if (isHostAlive(host, now)) continue;
        this.#logger.info({ hostId: host.id, lastAnnouncedAt: host.lastAnnouncedAt }, "host stopped announcing");
        forgetHost(this.#deps, host.id);
      }
      // After dropping hosts: a persistent task that lost a holder with them gets a new copy now.
      this.persistent.reconcile();
      this.registry.forgetStaleTasks(now, STALE_TASK_MS);
      this.flow.forgetIdle(now);
    } catch (err) {
      this.#logger.error({ err: errorMessage(err) }, "garbage collection failed");
    }
  }

  async close(): Promise<void> {
    this.#started = false;
    if (this.#gcTimer !== undefined) clearInterval(this.#gcTimer);
    // AnnouncePeer streams live as long as downloads do: give them a moment, then cut them.
    await this.#rpc.close(1_000);
    await this.#metricsServer?.close();
    this.#seedTrigger.close();
    this.#logger.info("scheduler stopped");
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
