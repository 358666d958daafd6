import { mkdir, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { createHash } from "node:crypto";
import type { Agent } from "undici";
import { HostType, RpcServer, dfdaemonv1 } from "@lacewing/api";
import { ErrorCode, LacewingError, MetricsServer, isS3Url, securityOf, type Logger, type Security } from "@lacewing/common";
import { localApi } from "./api/local-api.js";
import type { DfdaemonConfig } from "./config.js";
import { TaskManager } from "./download/task-manager.js";
import { originFiller, type TaskFiller } from "./download/task-filler.js";
import { daemonError } from "./errors.js";
import { createDfdaemonMetrics, type DfdaemonMetrics } from "./metrics.js";
import { PeerClients, parentChannels } from "./p2p/parent-peer.js";
import { peerFiller } from "./p2p/peer-filler.js";
import { PieceClient } from "./p2p/piece-client.js";
import { peerService } from "./peer/peer-service.js";
import { RegistryMirror } from "./proxy/registry-mirror.js";
import { announceCachedTasks } from "./scheduler/cache-announcer.js";
import { SchedulerPool, type HostInit } from "./scheduler/scheduler-pool.js";
import { PieceBuffers } from "./storage/piece-buffers.js";
import { TaskStore } from "./storage/task-store.js";
import { CacheCollector } from "./gc/collector.js";
import type { EvictionReason, GcPolicy } from "./gc/eviction-policy.js";
import { checkOriginUrl, createOriginAgent, type OriginPolicy } from "./source/origin-policy.js";
import { pinSourceVersion } from "./source/s3-source.js";
import { RangeReader } from "./source/range-reader.js";
import { UploadGrants } from "./upload/upload-grants.js";
import { PersistentCache } from "./persistent/persistent-cache.js";
import { UPLOAD_MEMORY_PER_SLOT, UploadServer } from "./upload/upload-server.js";

/** Longest a download waits for its scheduler's answer to a register or reschedule (the scheduler waits 10 s for a parent by default). */
const ANSWER_TIMEOUT_MS = 60_000;
/** How often a downloading peer asks its scheduler for more parents. */
export const REFRESH_INTERVAL_MS = 1_000;

export interface DfdaemonOptions {
  /** Process-wide default metrics (event loop, memory); off when several daemons share a process. */
  defaultMetrics?: boolean;
  /** TLS material given directly (tests); otherwise it comes from config.tlsDir / config.insecure. */
  security?: Security;
}

/**
 * One node's daemon: the piece store, the download path (peers as the
 * scheduler directs, or the origin), the upload server and peer service that
 * feed other nodes, the local API for dfget, and metrics.
 */
export class Dfdaemon {
  readonly config: DfdaemonConfig;
  readonly hostId: string;
  readonly store: TaskStore;
  readonly tasks: TaskManager;
  readonly metrics: DfdaemonMetrics;
  readonly schedulers: SchedulerPool;
  readonly collector: CacheCollector;
  /** dfcache: persistent cache tasks on this node. */
  readonly persistent: PersistentCache;
  readonly security: Security;
  readonly #log: Logger;
  // dfget talks to the unix socket, which its file permissions guard; nothing else listens in the clear.
  readonly #localServer = new RpcServer({ security: { mode: "insecure" } });
  readonly #peerServer: RpcServer;
  readonly #upload: UploadServer;
  readonly #grants = new UploadGrants();
  readonly #metricsServer: MetricsServer;
  readonly #mirror: RegistryMirror;
  readonly #originAgent: Agent;
  readonly #clients: PeerClients;
  /** Memory for pieces being received, shared by every download. */
  readonly #pieceBuffers: PieceBuffers;
  readonly #pieces: PieceClient;
  readonly #rangeReader: RangeReader;
  /** Children syncing pieces from this peer right now. */
  readonly #children = new Set<string>();
  readonly #recentFailures: Array<{ taskId: string; url: string; description: string; atMs: number }> = [];
  #peerPort = 0;
  #started = false;

  constructor(config: DfdaemonConfig, log: Logger, options: DfdaemonOptions = {}) {
    this.config = config;
    this.#log = log;
    this.security = options.security ?? securityOf(config, { role: config.seed ? "seed" : "peer", listen: [config.listenIp], log });
    if (config.uploadTls && this.security.mode !== "tls")
      throw new LacewingError(
        ErrorCode.config,
        "invalid_argument",
        "invalid config: uploadTls needs tlsDir (the upload port's TLS uses the cluster certificates)",
        {
          details: { key: "uploadTls" },
        },
      );
    const policy: OriginPolicy = { allowLoopback: config.allowLoopbackOrigins };
    this.#peerServer = new RpcServer({ security: this.security });
    this.#originAgent = createOriginAgent(policy);
    this.#rangeReader = new RangeReader(policy);
    this.#clients = new PeerClients(this.security);
    this.#pieceBuffers = new PieceBuffers(config.pieceMemory);
    this.#pieces = new PieceClient(this.security, this.#pieceBuffers);
    this.hostId = `${hostname()}-${createHash("sha256").update(`${config.advertiseIp}:${config.peerPort}:${config.dataDir}`).digest("hex").slice(0, 8)}`;
    this.store = new TaskStore(config.dataDir, log, { keep: config.keepStorage, reserve: (task, bytes) => this.collector.reserve(task, bytes) });
    this.metrics = createDfdaemonMetrics(this.store, options);
    this.#metricsServer = new MetricsServer(this.metrics.registry, () => this.#started);
    this.#upload = new UploadServer({
      store: this.store,
      metrics: this.metrics,
      log,
      limit: config.uploadLimit,
      rateLimit: config.uploadRateLimit,
      superSeedWindowMs: config.seed ? config.superSeedWindow : 0,
      grants: this.#grants,
      idleTimeoutMs: config.pieceTimeout,
      buffers: new PieceBuffers(UPLOAD_MEMORY_PER_SLOT * config.uploadLimit),
      ...(config.uploadTls && this.security.mode === "tls" ? { tls: this.security.material } : {}),
    });
    this.schedulers = new SchedulerPool({
      security: this.security,
      entries: config.scheduler,
      hostInfo: () => this.#hostInfo(),
      announceIntervalMs: config.announceInterval,
      log,
      onNewHost: (endpoint) =>
        void announceCachedTasks({
          pool: this.schedulers,
          store: this.store,
          hostId: this.hostId,
          endpoint,
          log,
          onDeleted: (taskId) => void this.collector.evict(taskId, "deleted").catch(() => undefined),
        }),
    });
    this.tasks = new TaskManager({
      store: this.store,
      log,
      metrics: this.metrics,
      fill: this.#filler(policy),
      outputTempTtlMs: config.outputTempTtl,
      pin: (spec, signal) => pinSourceVersion(spec, policy, signal),
    });
    this.#mirror = new RegistryMirror({
      tasks: this.tasks,
      store: this.store,
      metrics: this.metrics,
      log: log.child({ component: "proxy" }),
      route: { defaultRegistry: config.proxyDefaultRegistry, allowedRegistries: config.proxyRegistries, plainHttpRegistries: config.proxyPlainHttpRegistries },
      stallTimeoutMs: config.proxyStallTimeout,
      policy,
    });
    this.collector = new CacheCollector({
      store: this.store,
      isDownloading: (taskId) => this.tasks.isActive(taskId),
      policy: gcPolicyOf(config),
      intervalMs: config.gcInterval,
      log,
      evictions: this.metrics.evictions,
      onEvicted: (taskId, reason) => this.#onEvicted(taskId, reason),
    });
    this.persistent = new PersistentCache({ store: this.store, tasks: this.tasks, collector: this.collector, pool: this.schedulers, hostId: this.hostId, log });
  }

  /** An evicted task must stop being handed out as a parent at once: tell the schedulers (DeleteTask). */
  #onEvicted(taskId: string, reason: EvictionReason): void {
    this.#log.debug({ taskId, reason }, "reporting eviction to the schedulers");
    void this.schedulers.deleteTask(this.hostId, taskId);
  }

  /**
   * Where pieces come from. A URL this node would not fetch itself is not
   * fetched through peers either: what a seed allowed to fetch loopback
   * brought in would otherwise reach a node that refuses it.
   */
  #filler(policy: OriginPolicy): TaskFiller {
    const fill = this.#sources(policy);
    return async (request) => {
      // A persistent cache task has no origin: its dfcache:// URL is a name, and it is never fetched.
      // An s3:// URL names a bucket, not a host: its store's endpoint is checked where it is reached (source/s3-source.ts).
      if (request.spec.persistent === undefined && !isS3Url(request.spec.url)) checkOriginUrl(new URL(request.spec.url), policy);
      // The one place back-to-source is decided: the daemon's setting joins the caller's, and fillers read only the spec.
      const disableBackToSource = request.spec.disableBackToSource === true || this.config.disableBackToSource;
      await fill({ ...request, spec: { ...request.spec, disableBackToSource } });
    };
  }

  #sources(policy: OriginPolicy): TaskFiller {
    const { config } = this;
    const origin = originFiller({
      concurrency: config.originConcurrency,
      attempts: config.pieceAttempts,
      log: this.#log,
      buffers: this.#pieceBuffers,
      reader: this.#rangeReader,
      dispatcher: this.#originAgent,
      policy,
    });
    if (this.schedulers.configured)
      return peerFiller({
        pool: this.schedulers,
        hostId: this.hostId,
        channels: parentChannels(this.#clients, this.#pieces),
        origin,
        peerConcurrency: config.peerConcurrency,
        perParentLimit: config.parentPipeline,
        stallTimeoutMs: config.parentStallTimeout,
        pieceTimeoutMs: config.pieceTimeout,
        maxReschedules: config.maxReschedules,
        answerTimeoutMs: ANSWER_TIMEOUT_MS,
        refreshIntervalMs: REFRESH_INTERVAL_MS,
        log: this.#log,
        metrics: this.metrics,
      });
    return (request) => {
      if (request.spec.disableBackToSource === true)
        return Promise.reject(daemonError(ErrorCode.noSource, "unavailable", "no scheduler is configured and back-to-source is disabled"));
      return origin(request);
    };
  }

  async start(): Promise<void> {
    const { config } = this;
    await mkdir(config.dataDir, { recursive: true });
    await this.store.open();
    await this.#upload.listen(config.listenIp, config.uploadPort);
    this.#peerServer.add(
      dfdaemonv1.DfdaemonPeer,
      peerService({ store: this.store, tasks: this.tasks, grants: this.#grants, log: this.#log, persistent: this.persistent }, this.#children),
    );
    this.#peerPort = await this.#peerServer.listen(`${config.listenIp}:${config.peerPort}`);
    this.#localServer.add(
      dfdaemonv1.DfdaemonDownload,
      localApi({
        tasks: this.tasks,
        store: this.store,
        hostId: this.hostId,
        seed: config.seed,
        startedAt: Date.now(),
        recentFailures: this.#recentFailures,
        collector: this.collector,
        gcPolicy: gcPolicyOf(config),
        schedulers: () => this.schedulers.status(),
        persistent: this.persistent,
      }),
    );
    await mkdir(dirname(config.socket), { recursive: true });
    // A socket left by a crashed daemon would make bind fail.
    await rm(config.socket, { force: true });
    await this.#localServer.listen(`unix:${config.socket}`);
    await this.#metricsServer.listen(config.listenIp, config.metricsPort);
    await this.#mirror.listen(config.proxyListenIp, config.proxyPort);
    await this.schedulers.start();
    this.collector.start();
    this.#started = true;
    // Every bound port, so whatever started the daemon on port 0 learns them here (the e2e helpers do).
    this.#log.info(
      {
        hostId: this.hostId,
        socket: config.socket,
        dataDir: config.dataDir,
        peerPort: this.#peerPort,
        uploadPort: this.#upload.port,
        proxyPort: this.proxyPort,
        metricsPort: this.metricsPort,
        seed: config.seed,
      },
      "dfdaemon started",
    );
  }

  /** The bound registry mirror port (useful when configured as 0). */
  get proxyPort(): number {
    return this.#mirror.port;
  }

  /** The bound metrics port (useful when configured as 0). */
  get metricsPort(): number {
    return this.#metricsServer.port;
  }

  #hostInfo(): HostInit {
    const { config } = this;
    return {
      id: this.hostId,
      ip: config.advertiseIp,
      hostname: hostname(),
      port: this.#peerPort,
      downloadPort: this.#upload.port,
      type: config.seed ? HostType.SEED : HostType.NORMAL,
      idc: config.idc,
      location: config.location,
      concurrentUploadLimit: config.uploadLimit,
      concurrentUploadCount: this.#children.size,
      uploadBytes: BigInt(this.#upload.uploadedBytes),
      uploadRateLimit: BigInt(config.uploadRateLimit),
      announceIntervalSeconds: Math.max(1, Math.ceil(config.announceInterval / 1000)),
      downloadTls: config.uploadTls,
      // For the manager's console; the store keeps these in memory, so the sum is cheap at announce intervals.
      cacheBytes: BigInt(this.store.all().reduce((sum, task) => sum + task.completedBytes, 0)),
      cacheQuotaBytes: BigInt(config.diskQuota),
    };
  }

  async close(): Promise<void> {
    this.#started = false;
    await this.collector.close();
    this.tasks.close();
    await this.schedulers.close(this.hostId);
    await this.#localServer.close();
    await this.#peerServer.close();
    await this.#upload.close();
    await this.#mirror.close();
    await this.#metricsServer.close();
    this.#clients.close();
    this.#pieces.close();
    this.#rangeReader.close();
    // destroy, not close: close waits for requests still in flight, and shutdown must not.
    await this.#originAgent.destroy();
    await this.store.close();
    await rm(this.config.socket, { force: true });
  }
}

function gcPolicyOf(config: DfdaemonConfig): GcPolicy {
  return { taskTtlMs: config.taskTtl, quotaBytes: config.diskQuota, highWatermark: config.highWatermark, lowWatermark: config.lowWatermark };
}
