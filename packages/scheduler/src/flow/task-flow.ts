/**
 * The recent flow of one task's pieces: who fed whom (bytes per parent →
 * child edge, the origin as parent -1) and when each piece landed on each
 * peer. Operators read it to see why a rollout is slow; nothing schedules by
 * it. Everything is bounded (see FlowLimits) and kept in typed arrays that
 * grow by doubling, so a small task costs little and a huge one no more than
 * the caps allow.
 */

export interface FlowLimits {
  /** Peers itemised per task; the landings of later ones are counted in droppedPeerLandings. */
  readonly peersPerTask: number;
  /** (parent, child) edges itemised per task; landings on later ones are counted in droppedEdgeLandings. */
  readonly edgesPerTask: number;
  /** Piece landings kept per task, the most recent ones (a ring). */
  readonly landingsPerTask: number;
}

/** The origin, as a parent index. */
export const ORIGIN = -1;

const INITIAL_CAPACITY = 16;

export interface FlowEdgeView {
  parent: number;
  child: number;
  bytes: number;
  pieces: number;
  firstMs: number;
  lastMs: number;
}

export interface FlowLandings {
  /** Sequence number of the first landing returned. */
  firstSeq: number;
  /** Landings after the caller's `afterSeq` that are no longer kept. */
  dropped: number;
  child: Int32Array;
  parent: Int32Array;
  piece: Uint32Array;
  ms: Uint32Array;
}

export class TaskFlow {
  readonly taskId: string;
  /** Epoch ms of the first landing; landing and edge times are offsets from it. */
  readonly startedAt: number;
  /** Epoch ms of the latest landing. */
  lastAt: number;
  readonly peerIds: string[] = [];
  readonly hostIds: string[] = [];
  droppedPeerLandings = 0;
  droppedEdgeLandings = 0;
  readonly #limits: FlowLimits;
  readonly #peerIndex = new Map<string, number>();
  /** (parent + 1) * peersPerTask + child → edge slot. */
  readonly #edgeSlot = new Map<number, number>();
  #edgeCount = 0;
  #edgeParent = new Int32Array(INITIAL_CAPACITY);
  #edgeChild = new Int32Array(INITIAL_CAPACITY);
  // Float64: a busy edge passes 4 GiB.
  #edgeBytes = new Float64Array(INITIAL_CAPACITY);
  #edgePieces = new Uint32Array(INITIAL_CAPACITY);
  #edgeFirst = new Uint32Array(INITIAL_CAPACITY);
  #edgeLast = new Uint32Array(INITIAL_CAPACITY);
  /** Landings recorded since the flow began; the ring holds the last `landingsPerTask`. */
  #landed = 0;
  #ringChild = new Int32Array(INITIAL_CAPACITY);
  #ringParent = new Int32Array(INITIAL_CAPACITY);
  #ringPiece = new Uint32Array(INITIAL_CAPACITY);
  #ringMs = new Uint32Array(INITIAL_CAPACITY);

  constructor(taskId: string, startedAt: number, limits: FlowLimits) {
    this.taskId = taskId;
    this.startedAt = startedAt;
    this.lastAt = startedAt;
    this.#limits = limits;
  }

  get landed(): number {
    return this.#landed;
  }

  get edgeCount(): number {
    return this.#edgeCount;
  }

  /** The peer's index, adding it while there is room; undefined once the cap is reached. */
  peerIndexOf(peerId: string, hostId: string): number | undefined {
    const known = this.#peerIndex.get(peerId);
    if (known !== undefined) return known;
    if (this.peerIds.length >= this.#limits.peersPerTask) {
      this.droppedPeerLandings++;
      return undefined;
    }
    const index = this.peerIds.length;
    this.peerIds.push(peerId);
    this.hostIds.push(hostId);
    this.#peerIndex.set(peerId, index);
    return index;
  }

  knownPeer(peerId: string): number | undefined {
    return this.#peerIndex.get(peerId);
  }

  /** One verified piece of `bytes` reached `child` from `parent` (ORIGIN for the origin) at epoch ms `at`. */
  land(child: number, parent: number, piece: number, bytes: number, at: number): void {
    const ms = Math.max(0, Math.min(0xffffffff, Math.round(at - this.startedAt)));
    this.lastAt = Math.max(this.lastAt, at);
    this.#addToEdge(parent, child, bytes, ms);
    const capacity = this.#ringChild.length;
    if (this.#landed >= capacity && capacity < this.#limits.landingsPerTask) this.#growRing();
    const slot = this.#landed % this.#ringChild.length;
    this.#ringChild[slot] = child;
    this.#ringParent[slot] = parent;
    this.#ringPiece[slot] = piece;
    this.#ringMs[slot] = ms;
    this.#landed++;
  }

  edges(): FlowEdgeView[] {
    const edges: FlowEdgeView[] = [];
    for (let i = 0; i < this.#edgeCount; i++)
      edges.push({
        parent: this.#edgeParent[i]!,
        child: this.#edgeChild[i]!,
        bytes: this.#edgeBytes[i]!,
        pieces: this.#edgePieces[i]!,
        firstMs: this.#edgeFirst[i]!,
        lastMs: this.#edgeLast[i]!,
      });
    return edges;
  }

  /** Bytes and pieces `child` received, per parent (ORIGIN for the origin). */
  sourcesOf(child: number): Array<{ parent: number; bytes: number; pieces: number }> {
    const sources: Array<{ parent: number; bytes: number; pieces: number }> = [];
    for (let i = 0; i < this.#edgeCount; i++)
      if (this.#edgeChild[i] === child) sources.push({ parent: this.#edgeParent[i]!, bytes: this.#edgeBytes[i]!, pieces: this.#edgePieces[i]! });
    return sources;
  }

  /** Landings with a sequence number at or after `afterSeq` that are still kept, oldest first. */
  landings(afterSeq: number): FlowLandings {
    const oldest = Math.max(0, this.#landed - this.#ringChild.length);
    const from = Math.max(oldest, Math.min(afterSeq, this.#landed));
    const count = this.#landed - from;
    const out: FlowLandings = {
      firstSeq: from,
      dropped: Math.max(0, oldest - afterSeq),
      child: new Int32Array(count),
      parent: new Int32Array(count),
      piece: new Uint32Array(count),
      ms: new Uint32Array(count),
    };
    const size = this.#ringChild.length;
    for (let i = 0; i < count; i++) {
      const slot = (from + i) % size;
      out.child[i] = this.#ringChild[slot]!;
      out.parent[i] = this.#ringParent[slot]!;
      out.piece[i] = this.#ringPiece[slot]!;
      out.ms[i] = this.#ringMs[slot]!;
    }
    return out;
  }

  #addToEdge(parent: number, child: number, bytes: number, ms: number): void {
    const key = (parent + 1) * this.#limits.peersPerTask + child;
    let slot = this.#edgeSlot.get(key);
    if (slot === undefined) {
      if (this.#edgeCount >= this.#limits.edgesPerTask) {
        this.droppedEdgeLandings++;
        return;
      }
      if (this.#edgeCount === this.#edgeParent.length) this.#growEdges();
      slot = this.#edgeCount++;
      this.#edgeSlot.set(key, slot);
      this.#edgeParent[slot] = parent;
      this.#edgeChild[slot] = child;
      this.#edgeFirst[slot] = ms;
    }
    this.#edgeBytes[slot] = this.#edgeBytes[slot]! + bytes;
    this.#edgePieces[slot] = this.#edgePieces[slot]! + 1;
    this.#edgeLast[slot] = ms;
  }

  #growEdges(): void {
    const size = Math.min(this.#limits.edgesPerTask, this.#edgeParent.length * 2);
    this.#edgeParent = grown(this.#edgeParent, size);
    this.#edgeChild = grown(this.#edgeChild, size);
    this.#edgeBytes = grown(this.#edgeBytes, size);
    this.#edgePieces = grown(this.#edgePieces, size);
    this.#edgeFirst = grown(this.#edgeFirst, size);
    this.#edgeLast = grown(this.#edgeLast, size);
  }

  /** Only called while the ring has never wrapped, so slots keep their positions. */
  #growRing(): void {
    const size = Math.min(this.#limits.landingsPerTask, this.#ringChild.length * 2);
    this.#ringChild = grown(this.#ringChild, size);
    this.#ringParent = grown(this.#ringParent, size);
    this.#ringPiece = grown(this.#ringPiece, size);
    this.#ringMs = grown(this.#ringMs, size);
  }
}

function grown<T extends Int32Array | Uint32Array | Float64Array>(array: T, size: number): T {
  const next = new (array.constructor as new (length: number) => T)(size);
  next.set(array);
  return next;
}
