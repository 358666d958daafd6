/**
 * pending: registered, waiting for parents. running: downloading from
 * parents. back_to_source: fetching from the origin. succeeded / failed:
 * done. A failed peer is never handed out.
 */
export type PeerState = "pending" | "running" | "back_to_source" | "succeeded" | "failed";

import { PieceSet } from "./piece-set.js";

/** One download of one task on one host. */
export interface Peer {
  readonly id: string;
  readonly taskId: string;
  readonly hostId: string;
  state: PeerState;
  /** Piece numbers the peer holds (verified on its side against the task's digests). */
  readonly pieces: PieceSet;
  /** Parents this peer must not be given again. */
  readonly blocklist: Set<string>;
  /** Parents this scheduler handed to the peer: only about those can it report a corrupt piece. */
  readonly parentsGiven: Set<string>;
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
    pieces: new PieceSet(fields.heldPieces),
    blocklist: new Set(),
    parentsGiven: new Set(),
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
