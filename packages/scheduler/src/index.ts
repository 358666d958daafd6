/**
 * The lacewing scheduler: knows every host, task and peer, chooses parents
 * for each downloading peer and asks seed peers to fetch.
 *
 * ```ts
 * const scheduler = new SchedulerServer({ config: { listen: "127.0.0.1:0" } });
 * await scheduler.start();
 * const client = createClient(schedulerv1.Scheduler, scheduler.address);
 * // ...
 * await scheduler.close();
 * ```
 */
export { SchedulerServer, type SchedulerServerOptions } from "./scheduler-server.js";
export { loadSchedulerConfig, schedulerConfigSchema, type SchedulerConfig } from "./config.js";
export { createSchedulerMetrics, type SchedulerMetrics } from "./metrics/metrics.js";
export { ResourceRegistry } from "./resource/resource-registry.js";
/** The scheduling code itself, for the rollout simulator (test/sim), which drives it with simulated hosts and peers. */
export { chooseParents, noteSourceLost, schedulePeer, type ScheduleResult, type SchedulingDeps, type SchedulingOptions } from "./scheduling/scheduling.js";
export { addPieceCost, markBadParents, recordPieceCost } from "./scheduling/outlier.js";
export { newPeer, type Peer } from "./resource/peer.js";
export { forgetBackToSourcePeer, notifyTaskChanged, recordGeometry, recordPieceDigest, type Task } from "./resource/task.js";
export { isSeedHost, type HostRecord } from "./resource/host.js";
