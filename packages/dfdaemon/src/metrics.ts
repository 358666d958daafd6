import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { TaskStore } from "./storage/task-store.js";

export type ByteSource = "origin" | "peer" | "cache";
export type PieceFailureReason = "connect" | "timeout" | "corrupt" | "not_found" | "busy" | "elsewhere" | "other";

/**
 * The daemon's Prometheus metrics. Names are a contract with the Grafana
 * dashboard in charts/lacewing/dashboards; one registry per daemon so
 * several daemons can share a test process.
 */
export interface DfdaemonMetrics {
  readonly registry: Registry;
  /** Bytes stored by this daemon, by where they came from (cache: served from an earlier download). */
  readonly downloadBytes: Counter<"source">;
  /** Piece bytes served to other peers. */
  readonly uploadBytes: Counter;
  readonly uploadPieces: Counter<"result">;
  readonly downloads: Counter<"result">;
  readonly pieceFailures: Counter<"reason">;
  readonly pieceDuration: Histogram<"source">;
  /** Requests for a piece already in flight from another parent (endgame), and whether this copy won. */
  readonly endgameRequests: Counter<"result">;
  readonly backToSource: Counter<"reason">;
  readonly proxyRequests: Counter<"kind" | "result">;
  readonly evictions: Counter<"reason">;
}

export function createDfdaemonMetrics(store: TaskStore, options: { defaultMetrics?: boolean } = {}): DfdaemonMetrics {
  const registry = new Registry();
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: registry, prefix: "lacewing_dfdaemon_" });
  new Gauge({
    name: "lacewing_dfdaemon_tasks",
    help: "Tasks in the node cache, by state.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      let finished = 0;
      const all = store.all();
      for (const task of all) if (task.finished) finished++;
      this.set({ state: "finished" }, finished);
      this.set({ state: "partial" }, all.length - finished);
    },
  });
  new Gauge({
    name: "lacewing_dfdaemon_cache_bytes",
    help: "Verified piece bytes held in the node cache.",
    registers: [registry],
    collect() {
      this.set(store.all().reduce((sum, task) => sum + task.completedBytes, 0));
    },
  });
  return {
    registry,
    downloadBytes: new Counter({
      name: "lacewing_dfdaemon_download_bytes_total",
      help: "Bytes downloaded, by source: origin, peer, or cache.",
      labelNames: ["source"],
      registers: [registry],
    }),
    uploadBytes: new Counter({ name: "lacewing_dfdaemon_upload_bytes_total", help: "Piece bytes served to other peers.", registers: [registry] }),
    uploadPieces: new Counter({
      name: "lacewing_dfdaemon_upload_pieces_total",
      help: "Piece requests from other peers, by result.",
      labelNames: ["result"],
      registers: [registry],
    }),
    downloads: new Counter({
      name: "lacewing_dfdaemon_downloads_total",
      help: "Download requests finished, by result.",
      labelNames: ["result"],
      registers: [registry],
    }),
    pieceFailures: new Counter({
      name: "lacewing_dfdaemon_piece_failures_total",
      help: "Pieces that failed to download from a parent or the origin, by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    pieceDuration: new Histogram({
      name: "lacewing_dfdaemon_piece_duration_seconds",
      help: "Time to fetch one piece, by source.",
      labelNames: ["source"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    endgameRequests: new Counter({
      name: "lacewing_dfdaemon_endgame_requests_total",
      help: "Second requests for a piece in flight from a slower parent at the end of a download, by result (won, lost).",
      labelNames: ["result"],
      registers: [registry],
    }),
    backToSource: new Counter({
      name: "lacewing_dfdaemon_back_to_source_total",
      help: "Downloads that went back to the origin, by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    proxyRequests: new Counter({
      name: "lacewing_dfdaemon_proxy_requests_total",
      help: "Registry mirror requests, by kind (blob, manifest, other) and result.",
      labelNames: ["kind", "result"],
      registers: [registry],
    }),
    evictions: new Counter({
      name: "lacewing_dfdaemon_evictions_total",
      help: "Tasks removed from the node cache, by reason (ttl, watermark, quota, manual).",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}
