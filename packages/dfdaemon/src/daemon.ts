import { mkdir, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { createHash } from "node:crypto";
import { RpcServer, dfdaemonv1 } from "@lacewing/api";
import { MetricsServer, type Logger } from "@lacewing/common";
import { localApi } from "./api/local-api.js";
import type { DfdaemonConfig } from "./config.js";
import { TaskManager } from "./download/task-manager.js";
import { TaskStore } from "./storage/task-store.js";
import { createDfdaemonMetrics, type DfdaemonMetrics } from "./metrics.js";

export interface DfdaemonOptions {
  /** Process-wide default metrics (event loop, memory); off when several daemons share a process. */
  defaultMetrics?: boolean;
}

/**
 * One node's daemon: the piece store, the download path and the local API.
 */
export class Dfdaemon {
  readonly config: DfdaemonConfig;
  readonly hostId: string;
  readonly store: TaskStore;
  readonly tasks: TaskManager;
  readonly #log: Logger;
  readonly metrics: DfdaemonMetrics;
  readonly #localServer = new RpcServer();
  readonly #metricsServer: MetricsServer;
  #started = false;

  constructor(config: DfdaemonConfig, log: Logger, options: DfdaemonOptions = {}) {
    this.config = config;
    this.#log = log;
    this.hostId = `${hostname()}-${createHash("sha256").update(`${config.advertiseIp}:${config.peerPort}:${config.dataDir}`).digest("hex").slice(0, 8)}`;
    this.store = new TaskStore(config.dataDir, log);
    this.metrics = createDfdaemonMetrics(this.store, options);
    this.#metricsServer = new MetricsServer(this.metrics.registry, () => this.#started);
    this.tasks = new TaskManager({ store: this.store, log, originConcurrency: config.originConcurrency, pieceAttempts: config.pieceAttempts });
  }

  async start(): Promise<void> {
    await mkdir(this.config.dataDir, { recursive: true });
    await this.store.open();
    this.#localServer.add(
      dfdaemonv1.DfdaemonDownload,
      localApi({ tasks: this.tasks, store: this.store, hostId: this.hostId, seed: this.config.seed, startedAt: Date.now(), recentFailures: [] }),
    );
    await mkdir(dirname(this.config.socket), { recursive: true });
    // A socket left by a crashed daemon would make bind fail.
    await rm(this.config.socket, { force: true });
    await this.#localServer.listen(`unix:${this.config.socket}`);
    await this.#metricsServer.listen(this.config.listenIp, this.config.metricsPort);
    this.#started = true;
    this.#log.info({ hostId: this.hostId, socket: this.config.socket, dataDir: this.config.dataDir }, "dfdaemon started");
  }

  /** The bound metrics port (useful when configured as 0). */
  get metricsPort(): number {
    return this.#metricsServer.port;
  }

  async close(): Promise<void> {
    this.tasks.close();
    await this.#localServer.close();
    await this.#metricsServer.close();
    await this.store.close();
    await rm(this.config.socket, { force: true });
  }
}
