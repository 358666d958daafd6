import { HostType, type Host } from "@lacewing/api";

/** Announce interval assumed for a host that reports none. */
export const DEFAULT_ANNOUNCE_INTERVAL_SECONDS = 30;

/** A host as the scheduler sees it: its last announcement plus bookkeeping. */
export interface HostRecord {
  readonly id: string;
  info: Host;
  /** Milliseconds since the epoch of the last AnnounceHost. */
  lastAnnouncedAt: number;
  /** Upload bytes per second between the last two announcements. */
  uploadRate: number;
  /**
   * Children this scheduler handed the host out to since its last
   * announcement. The host's own concurrent_upload_count only catches up at
   * the next announcement, so without this a burst of registrations would all
   * land on the same seed.
   */
  assignedSinceAnnounce: number;
  /** Peers on this host, by peer id, with their task id. */
  readonly peers: Map<string, string>;
}

export function newHostRecord(info: Host, now: number): HostRecord {
  return { id: info.id, info, lastAnnouncedAt: now, uploadRate: 0, assignedSinceAnnounce: 0, peers: new Map() };
}

/** Applies a fresh announcement: new facts, liveness, upload rate. */
export function refreshHost(host: HostRecord, info: Host, now: number): void {
  const elapsedSeconds = (now - host.lastAnnouncedAt) / 1000;
  const uploaded = Number(info.uploadBytes - host.info.uploadBytes);
  host.uploadRate = elapsedSeconds > 0 && uploaded >= 0 ? uploaded / elapsedSeconds : host.uploadRate;
  host.info = info;
  host.lastAnnouncedAt = now;
  host.assignedSinceAnnounce = 0;
}

export function announceIntervalMs(host: HostRecord): number {
  return (host.info.announceIntervalSeconds || DEFAULT_ANNOUNCE_INTERVAL_SECONDS) * 1000;
}

/** A host is alive until twice its announce interval passes without news. */
export function isHostAlive(host: HostRecord, now: number): boolean {
  return now - host.lastAnnouncedAt <= 2 * announceIntervalMs(host);
}

export function isSeedHost(host: HostRecord): boolean {
  return host.info.type === HostType.SEED;
}

/**
 * Upload slots the host can still give a new child. A limit of 0 means the
 * host did not say, which is treated as unlimited rather than as full.
 */
export function freeUploadSlots(host: HostRecord): number {
  const limit = host.info.concurrentUploadLimit;
  if (limit === 0) return Number.POSITIVE_INFINITY;
  return limit - host.info.concurrentUploadCount - host.assignedSinceAnnounce;
}
