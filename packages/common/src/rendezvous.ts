import { createHash } from "node:crypto";

/**
 * Rendezvous (highest random weight) hashing: every caller that knows the
 * same node list picks the same owner for a key, and removing a node moves
 * only the keys it owned. Returns nodes best-first.
 */
export function rendezvousOrder<T extends string>(key: string, nodes: readonly T[]): T[] {
  const weighted = nodes.map((node) => ({ node, weight: createHash("sha256").update(node).update("\0").update(key).digest().readBigUInt64BE(0) }));
  weighted.sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : a.node < b.node ? -1 : 1));
  return weighted.map((w) => w.node);
}

/** The owner of `key` among `nodes`, or undefined when there are none. */
export function rendezvousPick<T extends string>(key: string, nodes: readonly T[]): T | undefined {
  return rendezvousOrder(key, nodes)[0];
}
