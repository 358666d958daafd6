import { HostType, type Host } from "@lacewing/api";

/** Announce interval assumed for a host that reports none. */
export const DEFAULT_ANNOUNCE_INTERVAL_SECONDS = 30;

/**
 * Who announced a host first: the subject of its certificate and the
 * address it called from. Every later call about the host must come from
 * the same owner (undefined when the scheduler runs insecure).
 */
export interface HostOwner {
  readonly subject: string;
  readonly ip: string;
}

/** A host as the scheduler sees it: its last announcement plus bookkeeping. */
export interface HostRecord {
  readonly id: string;
  readonly owner: HostOwner | undefined;
  info: Host;
  /** Milliseconds since the epoch of the last AnnounceHost. */
  lastAnnouncedAt: number;
  /** Upload bytes per second between the last two announcements. */
  uploadRate: number;
  /**
   * When this scheduler handed the host out to a child, since its last
   * announcement. The host's own concurrent_upload_count only catches up at
   * the next announcement, so without this a burst of registrations would all
   * land on the same seed.
   */
  assignments: number[];
  /** Peers on this host, by peer id, with their task id. */
  readonly peers: Map<string, string>;
}

export function newHostRecord(info: Host, now: number, owner: HostOwner | undefined): HostRecord {
  return { id: info.id, owner, info, lastAnnouncedAt: now, uploadRate: 0, assignments: [], peers: new Map() };
}

/** True when `owner` may speak for the host. */
export function ownsHost(host: HostRecord, owner: HostOwner | undefined): boolean {
  return host.owner === undefined || (owner !== undefined && host.owner.subject === owner.subject && host.owner.ip === owner.ip);
}

/** Applies a fresh announcement: new facts, liveness, upload rate. */
export function refreshHost(host: HostRecord, info: Host, now: number): void {
  const elapsedSeconds = (now - host.lastAnnouncedAt) / 1000;
  const uploaded = Number(info.uploadBytes - host.info.uploadBytes);
  host.uploadRate = elapsedSeconds > 0 && uploaded >= 0 ? uploaded / elapsedSeconds : host.uploadRate;
  host.info = info;
  host.lastAnnouncedAt = now;
  host.assignments = [];
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
 * How long an assignment counts against a host's upload slots when no
 * announcement came to replace it: a child is given several parents and may
 * use only some, so a held slot must not stay held for a whole interval.
 */
export const ASSIGNMENT_HOLD_MS = 5_000;

/** Notes that the host was handed to a child as a parent. */
export function recordAssignment(host: HostRecord, now: number): void {
  host.assignments.push(now);
}

/** Children assigned to the host within ASSIGNMENT_HOLD_MS (and since its last announcement). */
export function recentAssignments(host: HostRecord, now: number): number {
  while (host.assignments.length > 0 && now - (host.assignments[0] ?? now) >= ASSIGNMENT_HOLD_MS) host.assignments.shift();
  return host.assignments.length;
}

/**
 * Upload slots the host can still give a new child. A limit of 0 means the
 * host did not say, which is treated as unlimited rather than as full.
 */
export function freeUploadSlots(host: HostRecord, now: number): number {
  const limit = host.info.concurrentUploadLimit;
  if (limit === 0) return Number.POSITIVE_INFINITY;
  return limit - host.info.concurrentUploadCount - recentAssignments(host, now);
}
