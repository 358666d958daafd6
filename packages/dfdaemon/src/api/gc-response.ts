import type { dfdaemonv1, MessageInitShape } from "@lacewing/api";
import type { GcReport } from "../gc/collector.js";
import type { GcPolicy } from "../gc/eviction-policy.js";

type GcResponse = MessageInitShape<typeof dfdaemonv1.GcResponseSchema>;

/** A collector pass as the local API's Gc answers it. */
export function gcResponseOf(report: GcReport, policy: GcPolicy): GcResponse {
  return {
    dryRun: report.dryRun,
    evictions: report.evictions.map((e) => ({
      taskId: e.taskId,
      url: e.url,
      bytes: BigInt(e.bytes),
      lastAccessedAtMs: BigInt(e.lastAccessedAt),
      reason: e.reason,
      detail: e.detail,
      finished: e.finished,
    })),
    usage: {
      cacheBytes: BigInt(report.cacheBytes),
      quotaBytes: BigInt(policy.quotaBytes),
      filesystemBytes: BigInt(report.filesystem?.size ?? 0),
      filesystemUsedBytes: BigInt(report.filesystem?.used ?? 0),
      highWatermarkPercent: policy.highWatermark,
      lowWatermarkPercent: policy.lowWatermark,
      taskCount: report.taskCount,
      busyTaskCount: report.busyTaskCount,
      taskTtlMs: BigInt(policy.taskTtlMs),
    },
  };
}
