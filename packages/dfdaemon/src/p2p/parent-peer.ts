import { createClient, dfdaemonv1, type MessageInitShape, type RpcClient, type schedulerv1, type PieceInfo, type TaskInfo } from "@lacewing/api";
import { MEMBER_ROLES, errorMessage, type Security } from "@lacewing/common";
import type { PieceBuffer } from "../storage/piece-buffers.js";
import type { PieceClient, PieceRequest, PieceSource } from "./piece-client.js";

export type PeerClient = RpcClient<typeof dfdaemonv1.DfdaemonPeer>;

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** One gRPC client (one HTTP/2 connection) per parent host, shared by all downloads; parents must prove they are cluster members. */
export class PeerClients {
  readonly #clients = new Map<string, PeerClient>();
  readonly #subjects = new Map<string, string>();
  readonly #security: Security;

  constructor(security: Security) {
    this.#security = security;
  }

  get(endpoint: string): PeerClient {
    let client = this.#clients.get(endpoint);
    if (client === undefined) {
      client = createClient(dfdaemonv1.DfdaemonPeer, endpoint, {
        security: this.#security,
        serverRoles: MEMBER_ROLES,
        onServerSubject: (subject) => this.#subjects.set(endpoint, subject),
      });
      this.#clients.set(endpoint, client);
    }
    return client;
  }

  /** The certificate subject the parent at `endpoint` presented; "" when insecure, undefined before the handshake. */
  subjectOf(endpoint: string): string | undefined {
    return this.#security.mode === "insecure" ? "" : this.#subjects.get(endpoint);
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}

export type SyncRequest = MessageInitShape<typeof dfdaemonv1.SyncPiecesRequestSchema>;

/**
 * How a child reaches its parents: their piece announcements (SyncPieces on
 * the peer port) and their pieces (the download port). The daemon's are
 * gRPC and the piece protocol (`parentChannels`); the P2P unit harness
 * fakes them.
 */
export interface ParentChannels {
  syncPieces(endpoint: string, request: SyncRequest, signal: AbortSignal): AsyncIterable<dfdaemonv1.SyncPiecesResponse>;
  /** The certificate subject the parent at `endpoint` presented; "" when insecure, undefined before the handshake. */
  subjectOf(endpoint: string): string | undefined;
  /** The piece's verified bytes, in a lease the caller releases; rejects with a PieceFetchError. */
  fetchPiece(source: PieceSource, request: PieceRequest): Promise<PieceBuffer>;
}

export function parentChannels(clients: PeerClients, pieces: PieceClient): ParentChannels {
  return {
    syncPieces: (endpoint, request, signal) => clients.get(endpoint).syncPieces(request, { signal }),
    subjectOf: (endpoint) => clients.subjectOf(endpoint),
    fetchPiece: (source, request) => pieces.fetch(source, request),
  };
}

/** A piece a parent says it holds, and its own digest of it (hex), if it sent a well-formed one. */
export interface AnnouncedPiece {
  number: number;
  sha256: string | undefined;
}

function announcedOf(piece: PieceInfo): AnnouncedPiece {
  return { number: piece.number, sha256: piece.sha256.length === 32 ? Buffer.from(piece.sha256).toString("hex") : undefined };
}

export interface ParentEvents {
  info: (parent: ParentPeer, info: TaskInfo) => void;
  /**
   * The parent says it holds these pieces, each with its own digest of it
   * (hex, if it sent one): unchecked, the dispatcher judges them.
   */
  pieces: (parent: ParentPeer, pieces: readonly AnnouncedPiece[]) => void;
  /** The sync stream ended: `err` is undefined when the parent finished normally. */
  end: (parent: ParentPeer, err: unknown) => void;
}

/**
 * A parent of one download: the pieces it announced over SyncPieces, the
 * credential for its download port, the requests in flight to it, and
 * whether this child gave up on it. Nothing it says about the content is
 * believed: lengths and digests come from the scheduler.
 */
export class ParentPeer {
  readonly id: string;
  readonly hostId: string;
  /** The parent's download port. */
  readonly source: PieceSource;
  /** The parent's peer port (SyncPieces). */
  readonly endpoint: string;
  /** Piece numbers the parent announced and the dispatcher accepted. */
  readonly pieces = new Set<number>();
  /** Of those, the ones the child still wants: what it may ask this parent for (kept by the dispatcher). */
  readonly useful = new Set<number>();
  /** Sent as a bearer token with each piece request; arrives first on the sync stream. */
  token: string | undefined;
  inflight = 0;
  /** The parent holds the whole task. */
  finished = false;
  /** This child gave up on the parent for the task. */
  dropped = false;
  /** Epoch ms before which the parent said it is busy. */
  busyUntil = 0;
  /** Pieces this parent sent elsewhere (super-seeding), with the epoch ms until which not to ask it for them. */
  readonly elsewhere = new Map<number, number>();
  /** Bytes and milliseconds of pieces fetched from it, to prefer fast parents. */
  bytes = 0;
  costMs = 0;
  readonly #abort = new AbortController();

  constructor(candidate: schedulerv1.CandidateParent) {
    const host = candidate.host;
    this.id = candidate.peerId;
    this.hostId = host?.id ?? "";
    this.source = { ip: host?.ip ?? "", port: host?.downloadPort ?? 0, tls: host?.downloadTls === true };
    this.endpoint = hostPort(host?.ip ?? "", host?.port ?? 0);
  }

  /** Bytes per millisecond measured so far; unknown parents rank as fast, so they get tried. */
  get speed(): number {
    return this.costMs > 0 ? this.bytes / this.costMs : Number.POSITIVE_INFINITY;
  }

  /** Opens the SyncPieces stream and reports what arrives until it ends or the parent is dropped. */
  sync(channels: ParentChannels, request: SyncRequest, events: ParentEvents): void {
    const stream = channels.syncPieces(this.endpoint, request, this.#abort.signal);
    void (async () => {
      let failure: unknown;
      try {
        for await (const message of stream) {
          if (this.dropped) break;
          const { response } = message;
          if (response.case === "grant") this.token = response.value.token;
          else if (response.case === "taskInfo") events.info(this, response.value);
          else if (response.case === "pieces") events.pieces(this, response.value.pieces.map(announcedOf));
          else if (response.case === "piece") events.pieces(this, [announcedOf(response.value)]);
          else if (response.case === "finished") {
            this.finished = true;
            events.info(this, response.value);
          }
        }
        if (!this.finished && !this.dropped) failure = new Error("parent ended the piece stream before finishing");
      } catch (err) {
        failure = this.dropped ? undefined : new Error(`piece stream from parent broke: ${errorMessage(err)}`);
      }
      events.end(this, failure);
    })();
  }

  /** Gives up on this parent: closes its stream; its pieces are no longer asked for. */
  drop(): void {
    this.dropped = true;
    this.#abort.abort();
  }
}
