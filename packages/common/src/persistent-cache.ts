import { ErrorCode } from "./error-codes.js";
import { LacewingError } from "./errors.js";

/**
 * Bounds of a persistent cache task (dfcache), the same on every process:
 * dfcache checks them before calling the daemon, the daemon before storing,
 * and the scheduler before believing a holder's announcement.
 */
export const PERSISTENT_CACHE_BOUNDS = {
  /** Copies the scheduler keeps, the importer's included. */
  replicas: { min: 1, max: 64, default: 3 },
  /** Milliseconds. */
  ttlMs: { min: 1_000, max: 7 * 86_400_000, default: 3_600_000 },
} as const;

/** Persistent cache task ids are 64 lowercase hex digits, like every task id (a content id is the file's sha256). */
const PERSISTENT_TASK_ID = /^[0-9a-f]{64}$/;

/** What a persistent cache task carries wherever it goes: the copies wanted and when every copy goes. */
export interface PersistentCacheMeta {
  replicas: number;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  ttlMs: number;
}

function invalid(field: string, problem: string): LacewingError {
  return new LacewingError(ErrorCode.badRequest, "invalid_argument", `${field} ${problem}`, { details: { field } });
}

/** The problem with a persistent task id, or undefined. */
export function persistentTaskIdProblem(id: string): string | undefined {
  return PERSISTENT_TASK_ID.test(id) ? undefined : "must be 64 lowercase hex digits (a sha256)";
}

export function replicasProblem(replicas: number): string | undefined {
  const { min, max } = PERSISTENT_CACHE_BOUNDS.replicas;
  return Number.isInteger(replicas) && replicas >= min && replicas <= max ? undefined : `must be a whole number from ${min} to ${max}`;
}

export function ttlProblem(ttlMs: number): string | undefined {
  const { min, max } = PERSISTENT_CACHE_BOUNDS.ttlMs;
  return Number.isFinite(ttlMs) && ttlMs >= min && ttlMs <= max ? undefined : "must be from 1s to 7d";
}

export function checkPersistentTaskId(id: string, field = "task_id"): string {
  const problem = persistentTaskIdProblem(id);
  if (problem !== undefined) throw invalid(field, problem);
  return id;
}

/**
 * Checks persistent cache metadata from the wire (a holder's announcement, a
 * scheduler's trigger). An expiry further away than the longest TTL (plus a
 * minute of clock skew) is refused: no peer keeps a copy alive for ever.
 */
export function checkPersistentCache(
  cache: { replicas: number; expiresAtMs: bigint; ttlMs: bigint } | undefined,
  now: number,
  field = "persistent",
): PersistentCacheMeta {
  if (cache === undefined) throw invalid(field, "is required");
  const replicas = replicasProblem(cache.replicas);
  if (replicas !== undefined) throw invalid(`${field}.replicas`, replicas);
  const ttlMs = Number(cache.ttlMs);
  const ttl = ttlProblem(ttlMs);
  if (ttl !== undefined) throw invalid(`${field}.ttl_ms`, ttl);
  const expiresAt = Number(cache.expiresAtMs);
  if (!Number.isSafeInteger(expiresAt) || expiresAt > now + PERSISTENT_CACHE_BOUNDS.ttlMs.max + 60_000)
    throw invalid(`${field}.expires_at_ms`, "is further away than the longest TTL (7d)");
  return { replicas: cache.replicas, expiresAt, ttlMs };
}

/** The wire form of persistent cache metadata. */
export function persistentCacheMessageOf(meta: PersistentCacheMeta): { replicas: number; expiresAtMs: bigint; ttlMs: bigint } {
  return { replicas: meta.replicas, expiresAtMs: BigInt(meta.expiresAt), ttlMs: BigInt(meta.ttlMs) };
}
