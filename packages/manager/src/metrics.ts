import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { JOB_STATES, type JobState } from "./jobs/job.js";

export interface ManagerMetrics {
  readonly registry: Registry;
  jobCreated(): void;
  jobFinished(state: "succeeded" | "failed" | "cancelled"): void;
}

/**
 * The manager's metrics, in a registry of its own (several managers can live
 * in one test process). The jobs gauge reads the database at scrape time, so
 * it is right for jobs other replicas ran too.
 */
export function createManagerMetrics(countByState: () => Promise<Map<JobState, number>>, options: { defaultMetrics?: boolean } = {}): ManagerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? false) collectDefaultMetrics({ register: registry, prefix: "lacewing_manager_" });
  new Gauge({
    name: "lacewing_manager_jobs",
    help: "Jobs by state, as stored in the database",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const counts = await countByState();
      for (const state of JOB_STATES) this.set({ state }, counts.get(state) ?? 0);
    },
  });
  const total = new Counter({
    name: "lacewing_manager_jobs_total",
    help: "Jobs this process created (state=pending) and finished (succeeded, failed, cancelled)",
    labelNames: ["state"],
    registers: [registry],
  });
  return {
    registry,
    jobCreated: () => total.inc({ state: "pending" }),
    jobFinished: (state) => total.inc({ state }),
  };
}
