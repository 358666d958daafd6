import type { Knex } from "knex";
import { RpcServer, managerv1 } from "@lacewing/api";
import { errorMessage, securityOf, silentLogger, type Logger, type Security } from "@lacewing/common";
import { checkManagerConfig, splitHostPort, type ManagerConfig } from "./config.js";
import { openDatabase } from "./db/database.js";
import { JobStore } from "./db/job-store.js";
import { createManagerService } from "./grpc/manager-service.js";
import { BullmqQueue } from "./jobs/bullmq-queue.js";
import { InProcessQueue } from "./jobs/in-process-queue.js";
import type { JobQueue } from "./jobs/job-queue.js";
import { createPreheatProcessor } from "./jobs/preheat-processor.js";
import { createManagerApi, type ManagerApi } from "./manager-api.js";
import { createManagerMetrics, type ManagerMetrics } from "./metrics.js";
import { RestServer } from "./rest/rest-server.js";
import { SchedulerPool } from "./scheduler/scheduler-pool.js";
import { consoleDirs } from "./rest/console-assets.js";

export interface ManagerOptions {
  logger?: Logger;
  /** Process-wide default metrics (event loop, memory); off for embedded use and tests. */
  defaultMetrics?: boolean;
  /** BullMQ lock duration; tests shorten it to see stalled-job recovery quickly. */
  queueLockDurationMs?: number;
  /** TLS material given directly (tests); otherwise it comes from config.tlsDir / config.insecure. */
  security?: Security;
  /** Where hf:// preheats read HF_ENDPOINT and HF_TOKEN (process.env by default); tests point it at their hub. */
  hubEnv?: NodeJS.ProcessEnv;
}

/**
 * lacewing-manager: database, job queue, preheat processor, REST and gRPC
 * fronts. `start()` migrates the database, re-queues unfinished jobs and
 * listens; `close()` stops in the reverse order, leaving running jobs to be
 * resumed by the next start (or another replica).
 */
export class Manager {
  readonly config: ManagerConfig;
  /** The manager's certificate: schedulers take admin calls only from it, and its gRPC API only from its holders. */
  readonly security: Security;
  readonly #logger: Logger;
  readonly #options: ManagerOptions;
  #db: Knex | undefined;
  #queue: JobQueue | undefined;
  #schedulers: SchedulerPool | undefined;
  #rest: RestServer | undefined;
  #grpc: RpcServer | undefined;
  #api: ManagerApi | undefined;
  #metrics: ManagerMetrics | undefined;
  #restPort = 0;
  #grpcPort = 0;

  constructor(config: ManagerConfig, options: ManagerOptions = {}) {
    checkManagerConfig(config);
    this.config = config;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger();
    this.security = options.security ?? securityOf(config, { role: "manager", listen: [config.grpcListen], log: this.#logger });
  }

  /** Bound ports (useful when the config asked for port 0). */
  get restPort(): number {
    return this.#restPort;
  }

  get grpcPort(): number {
    return this.#grpcPort;
  }

  get api(): ManagerApi {
    if (this.#api === undefined) throw new Error("manager not started");
    return this.#api;
  }

  get metrics(): ManagerMetrics {
    if (this.#metrics === undefined) throw new Error("manager not started");
    return this.#metrics;
  }

  async start(): Promise<void> {
    const { config } = this;
    const logger = this.#logger;
    try {
      const db = await openDatabase({ url: config.databaseUrl, schema: config.databaseSchema, dataDir: config.dataDir });
      this.#db = db;
      const store = new JobStore(db);
      const metrics = createManagerMetrics(() => store.countByState(), { defaultMetrics: this.#options.defaultMetrics ?? false });
      this.#metrics = metrics;
      const schedulers = new SchedulerPool(config.scheduler, { security: this.security });
      this.#schedulers = schedulers;
      await schedulers.start();
      const queue: JobQueue =
        config.redisUrl === ""
          ? new InProcessQueue({ concurrency: config.jobConcurrency, logger })
          : new BullmqQueue({
              redisUrl: config.redisUrl,
              prefix: config.queuePrefix,
              concurrency: config.jobConcurrency,
              logger,
              ...(this.#options.queueLockDurationMs === undefined ? {} : { lockDurationMs: this.#options.queueLockDurationMs }),
            });
      this.#queue = queue;
      await queue.start(
        createPreheatProcessor({
          store,
          schedulers,
          metrics,
          logger,
          taskConcurrency: config.taskConcurrency,
          triggerTimeoutMs: config.triggerTimeout,
          ...(this.#options.hubEnv === undefined ? {} : { hubEnv: this.#options.hubEnv }),
        }),
      );
      // Jobs a previous run left pending or running (their queue entry may be gone).
      const unfinished = await store.unfinishedIds();
      for (const jobId of unfinished) await queue.enqueue(jobId);
      if (unfinished.length > 0) logger.info({ jobs: unfinished.length }, "re-queued unfinished jobs");

      const api = createManagerApi({ db, store, queue, schedulers, metrics, logger });
      this.#api = api;
      this.#rest = new RestServer({
        api,
        token: config.token,
        allowedHosts: config.allowedHosts,
        logger,
        consoleDirs: consoleDirs(),
        metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
        ready: async () => {
          try {
            await db.raw("select 1");
            return true;
          } catch {
            return false;
          }
        },
      });
      const rest = splitHostPort(config.listen);
      this.#restPort = await this.#rest.listen(rest.host, rest.port);
      this.#grpc = new RpcServer({ security: this.security }).add(managerv1.Manager, createManagerService(api, config.token));
      this.#grpcPort = await this.#grpc.listen(config.grpcListen);
      // The bound addresses, not the configured ones: whatever started it on port 0 learns its ports here (the e2e helpers do).
      const bound = (listen: string, port: number): string => `${listen.slice(0, listen.lastIndexOf(":"))}:${port}`;
      logger.info(
        {
          rest: bound(config.listen, this.#restPort),
          grpc: bound(config.grpcListen, this.#grpcPort),
          database: config.databaseUrl === "" ? "embedded" : "postgres",
          queue: config.redisUrl === "" ? "in-process" : "bullmq",
        },
        "manager started",
      );
    } catch (err) {
      await this.close().catch((closeErr: unknown) => logger.warn({ err: errorMessage(closeErr) }, "cleanup after failed start"));
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#rest?.close();
    await this.#grpc?.close(500);
    await this.#queue?.close();
    this.#schedulers?.close();
    await this.#db?.destroy();
    this.#rest = undefined;
    this.#grpc = undefined;
    this.#queue = undefined;
    this.#schedulers = undefined;
    this.#db = undefined;
  }
}
