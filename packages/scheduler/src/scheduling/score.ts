import { freeUploadSlots, isSeedHost, type HostRecord } from "../resource/host.js";
import type { Peer } from "../resource/peer.js";
import { piecesToGive } from "../resource/piece-set.js";
import type { Task } from "../resource/task.js";

/**
 * Weights of the score components, each component in [0, 1]. Pieces and
 * load dominate; topology decides between otherwise similar parents.
 */
const WEIGHTS = {
  pieces: 0.25,
  freeUpload: 0.15,
  uploadRate: 0.1,
  hostType: 0.2,
  idc: 0.2,
  location: 0.1,
} as const;

/** Parents within this much of each other are shuffled so load spreads. */
export const SCORE_JITTER = 0.05;

export interface ScoreContext {
  readonly task: Task;
  readonly child: Peer;
  readonly childHost: HostRecord;
  readonly hosts: ReadonlyMap<string, HostRecord>;
  readonly now: number;
  /** Whether any non-seed candidate holds pieces or is finished. */
  readonly normalHoldersExist: boolean;
  /** Highest upload rate among the candidates' hosts, for normalising. */
  readonly maxUploadRate: number;
  /** Most pieces the child could take from any one candidate, for normalising. */
  readonly maxUsefulPieces: number;
}

/** Pieces the parent holds that the child lacks. */
export function usefulPieces(parent: Peer, child: Peer): number {
  return piecesToGive(parent.pieces, child.pieces);
}

/** Number of leading `|`-separated location parts the two share, over the longer length. */
export function locationAffinity(a: string, b: string): number {
  if (a === "" || b === "") return 0;
  const left = a.split("|");
  const right = b.split("|");
  let common = 0;
  while (common < left.length && common < right.length && left[common] === right[common]) common++;
  return common / Math.max(left.length, right.length);
}

/** Deterministic part of a parent's score, higher is better. */
export function scoreParent(ctx: ScoreContext, parent: Peer): number {
  const host = ctx.hosts.get(parent.hostId);
  if (host === undefined) return 0;
  const finished = parent.state === "succeeded";
  const pieces = finished ? 1 : ctx.maxUsefulPieces > 0 ? usefulPieces(parent, ctx.child) / ctx.maxUsefulPieces : 0;

  const limit = host.info.concurrentUploadLimit;
  const freeUpload = limit === 0 ? 1 : Math.max(0, freeUploadSlots(host, ctx.now)) / limit;
  const uploadRate =
    host.info.uploadRateLimit > 0n
      ? 1 - Math.min(1, host.uploadRate / Number(host.info.uploadRateLimit))
      : ctx.maxUploadRate > 0
        ? 1 - host.uploadRate / ctx.maxUploadRate
        : 1;

  // Seeds first while they are the only holders; once normal peers hold the
  // content, prefer them so the seeds' uplinks serve the rest of the cluster.
  const seed = isSeedHost(host);
  const hostType = ctx.normalHoldersExist ? (seed ? 0.5 : 1) : seed ? 1 : 0;

  const childInfo = ctx.childHost.info;
  const idc = childInfo.idc !== "" && host.info.idc === childInfo.idc ? 1 : 0;
  const location = locationAffinity(childInfo.location, host.info.location);

  return (
    WEIGHTS.pieces * pieces +
    WEIGHTS.freeUpload * freeUpload +
    WEIGHTS.uploadRate * uploadRate +
    WEIGHTS.hostType * hostType +
    WEIGHTS.idc * idc +
    WEIGHTS.location * location
  );
}

export function buildScoreContext(
  base: Omit<ScoreContext, "normalHoldersExist" | "maxUploadRate" | "maxUsefulPieces">,
  candidates: readonly Peer[],
): ScoreContext {
  let normalHoldersExist = false;
  let maxUploadRate = 0;
  let maxUsefulPieces = 0;
  for (const parent of candidates) {
    const host = base.hosts.get(parent.hostId);
    if (host === undefined) continue;
    if (!isSeedHost(host) && (parent.state === "succeeded" || parent.pieces.size > 0)) normalHoldersExist = true;
    maxUploadRate = Math.max(maxUploadRate, host.uploadRate);
    maxUsefulPieces = Math.max(maxUsefulPieces, usefulPieces(parent, base.child));
  }
  return { ...base, normalHoldersExist, maxUploadRate, maxUsefulPieces };
}

/**
 * Candidates best-first. A little randomness is added to every score so
 * near-equal parents take turns instead of one absorbing every child.
 * Parents marked bad for the task go last.
 */
export function rankParents(ctx: ScoreContext, candidates: readonly Peer[], random: () => number = Math.random): Peer[] {
  const scored = candidates.map((parent) => ({
    parent,
    bad: ctx.task.badParents.has(parent.id),
    score: scoreParent(ctx, parent) + random() * SCORE_JITTER,
  }));
  scored.sort((a, b) => (a.bad !== b.bad ? (a.bad ? 1 : -1) : b.score - a.score));
  return scored.map((s) => s.parent);
}
