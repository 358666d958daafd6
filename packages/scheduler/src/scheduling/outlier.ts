import type { Task } from "../resource/task.js";

/** Pieces a parent must have served before its costs are judged. */
export const MIN_COST_SAMPLES = 3;
/** A parent this many times slower per byte than the others' median is bad. */
export const OUTLIER_FACTOR = 3;
/**
 * Below this mean cost per piece a parent is never judged bad: on a fast
 * network a few milliseconds of jitter would otherwise look like a 3× outlier.
 */
export const MIN_OUTLIER_PIECE_MS = 50;

/** Adds one piece's cost to the parent's totals and re-judges the task's parents. */
export function recordPieceCost(task: Task, parentId: string, bytes: number, costMs: number): void {
  if (addPieceCost(task, parentId, bytes, costMs)) markBadParents(task);
}

/** Adds one piece's cost to the parent's totals; false when there was nothing to add (no bytes). */
export function addPieceCost(task: Task, parentId: string, bytes: number, costMs: number): boolean {
  if (bytes <= 0) return false;
  const cost = task.parentCosts.get(parentId) ?? { bytes: 0, costMs: 0, samples: 0 };
  cost.bytes += bytes;
  cost.costMs += costMs;
  cost.samples++;
  task.parentCosts.set(parentId, cost);
  return true;
}

/**
 * A parent is bad when its mean cost per byte exceeds OUTLIER_FACTOR × the
 * median of the other parents that have enough samples. Comparing with the
 * others (not with a median that includes the parent) lets two parents be
 * judged against each other. Re-evaluated on every report, so a parent that
 * recovers loses the mark.
 */
export function markBadParents(task: Task): void {
  const judged = [...task.parentCosts]
    .filter(([, cost]) => cost.samples >= MIN_COST_SAMPLES)
    .map(([id, cost]) => ({ id, perByte: cost.costMs / cost.bytes, perPiece: cost.costMs / cost.samples }));
  task.badParents.clear();
  for (const parent of judged) {
    const others = judged.filter((other) => other.id !== parent.id).map((other) => other.perByte);
    if (others.length === 0 || parent.perPiece < MIN_OUTLIER_PIECE_MS) continue;
    const reference = median(others);
    if (parent.perByte > OUTLIER_FACTOR * reference) task.badParents.add(parent.id);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
