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
export type { ManagerApi, Cluster, JobPage, TaskPage } from "./manager-api.js";
// The API's JSON, as the console and other TypeScript clients see it (one schema each, src/schema/api-schemas.ts).
export type {
  ClusterView,
  CreateJobBody,
  ErrorBodyView,
  HostListView,
  HostView,
  JobPageView,
  JobView,
  SchedulerStatusView,
  TaskFlowView,
  TaskListView,
  TaskPeerView,
  TaskView,
} from "./schema/api-schemas.js";
export type { Job, JobState, PreheatArgs, PreheatScope, TaskResult, HostResult } from "./jobs/job.js";
export { resolveImage, type ImageLayer, type ResolvedImage } from "./oci/image-resolver.js";
export { createManagerMetrics, type ManagerMetrics } from "./metrics.js";
