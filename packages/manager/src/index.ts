/**
 * lacewing-manager: the control plane. Preheat jobs (REST and gRPC), and a
 * view of clusters, schedulers, seed peers and hosts.
 *
 * ```ts
 * const manager = new Manager(loadManagerConfig({ flags: { scheduler: "127.0.0.1:8002" } }));
 * await manager.start();
 * // POST http://127.0.0.1:8080/api/v1/jobs {"type":"preheat","args":{"type":"image","url":"…/manifests/latest"}}
 * await manager.close();
 * ```
 */
export { Manager, type ManagerOptions } from "./manager.js";
export { loadManagerConfig, managerConfigSchema, type ManagerConfig } from "./config.js";
export type { ManagerApi, Cluster, JobPage } from "./manager-api.js";
export type { Job, JobState, PreheatArgs, PreheatScope, TaskResult, HostResult } from "./jobs/job.js";
export { resolveImage, type ImageLayer, type ResolvedImage } from "./oci/image-resolver.js";
export { createManagerMetrics, type ManagerMetrics } from "./metrics.js";
