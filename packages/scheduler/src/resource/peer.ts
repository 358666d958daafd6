/**
 * pending: registered, waiting for parents. running: downloading from
 * parents. back_to_source: fetching from the origin. succeeded / failed:
 * done. A failed peer is never handed out.
 */
export type PeerState = "pending" | "running" | "back_to_source" | "succeeded" | "failed";

/** One download of one task on one host. */
export interface Peer {
  readonly id: string;
  readonly taskId: string;
  readonly hostId: string;
  state: PeerState;
  /** Piece numbers the peer holds (verified on its side). */
  readonly pieces: Set<number>;
  /** Parents this peer must not be given again. */
  readonly blocklist: Set<string>;
  reschedules: number;
  /** The download was triggered by the scheduler (seed fetch, preheat). */
  readonly triggered: boolean;
  /** Identity of the AnnouncePeer stream that owns the peer; a newer stream replaces it. */
  session: symbol | undefined;
  createdAt: number;
  updatedAt: number;
}

export function newPeer(fields: { id: string; taskId: string; hostId: string; triggered: boolean; heldPieces: Iterable<number>; now: number }): Peer {
  return {
    id: fields.id,
    taskId: fields.taskId,
    hostId: fields.hostId,
    state: "pending",
    pieces: new Set(fields.heldPieces),
    blocklist: new Set(),
    reschedules: 0,
    triggered: fields.triggered,
    session: undefined,
    createdAt: fields.now,
    updatedAt: fields.now,
  };
}

export function isPeerActive(peer: Peer): boolean {
  return peer.state !== "failed";
}
