import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { isSeedHost } from "../resource/host.js";
import type { ResourceRegistry } from "../resource/resource-registry.js";

/** The scheduler's Prometheus metrics; names are a contract with the Grafana dashboard. */
export interface SchedulerMetrics {
  readonly registry: Registry;
  /** Peers registered, by kind: `download` (to be scheduled) or `complete` (a cached task re-announced). */
  readonly peerRegistrations: Counter<"kind">;
  /** Scheduling answers by result: parents, back_to_source, empty (zero-byte task), refresh. */
  readonly scheduleTotal: Counter<"result">;
  /** Peers sent back to source, by cause (see BackToSourceCause). */
  readonly backToSource: Counter<"reason">;
  readonly scheduleDuration: Histogram;
  readonly pieceReports: Counter<"result">;
  readonly trafficBytes: Counter<"type">;
}

/**
 * One registry per scheduler instance (not prom-client's global one), so
 * several schedulers can live in one test process. Gauges are read from the
 * resource registry at scrape time.
 */
export function createSchedulerMetrics(resources: ResourceRegistry, options: { defaultMetrics?: boolean } = {}): SchedulerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: registry, prefix: "lacewing_scheduler_" });
  new Gauge({
    name: "lacewing_scheduler_hosts",
    help: "Hosts known to the scheduler, by type.",
    labelNames: ["type"],
    registers: [registry],
    collect() {
      let seed = 0;
      for (const host of resources.hosts.values()) if (isSeedHost(host)) seed++;
      this.set({ type: "seed" }, seed);
      this.set({ type: "normal" }, resources.hosts.size - seed);
    },
  });
  new Gauge({
    name: "lacewing_scheduler_peers",
    help: "Peers known to the scheduler, by state.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const counts: Record<string, number> = { pending: 0, running: 0, back_to_source: 0, succeeded: 0, failed: 0 };
      for (const task of resources.tasks.values()) for (const peer of task.peers.values()) counts[peer.state] = (counts[peer.state] ?? 0) + 1;
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
  new Gauge({
    name: "lacewing_scheduler_tasks",
    help: "Tasks known to the scheduler.",
    registers: [registry],
    collect() {
      this.set(resources.tasks.size);
    },
  });
  return {
    registry,
    peerRegistrations: new Counter({
      name: "lacewing_scheduler_peer_registrations_total",
      help: "Peers registered, by kind: download (to be scheduled) or complete (a node re-announcing a cached task).",
      labelNames: ["kind"],
      registers: [registry],
    }),
    scheduleTotal: new Counter({
      name: "lacewing_scheduler_schedule_total",
      help: "Scheduling answers, by result: parents, back_to_source, empty (zero-byte task) or refresh (more parents mid-download).",
      labelNames: ["result"],
      registers: [registry],
    }),
    backToSource: new Counter({
      name: "lacewing_scheduler_back_to_source_total",
      help: "Peers sent back to source, by reason: seed (the task's seed peer or triggered download), first_peer (no seed alive), timeout, reschedules.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    scheduleDuration: new Histogram({
      name: "lacewing_scheduler_schedule_duration_seconds",
      help: "Time from a register or reschedule to the scheduler's answer.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    pieceReports: new Counter({
      name: "lacewing_scheduler_piece_reports_total",
      help: "Piece reports from peers, by result.",
      labelNames: ["result"],
      registers: [registry],
    }),
    trafficBytes: new Counter({
      name: "lacewing_scheduler_traffic_bytes_total",
      help: "Bytes peers reported downloading, by where they came from.",
      labelNames: ["type"],
      registers: [registry],
    }),
  };
}
