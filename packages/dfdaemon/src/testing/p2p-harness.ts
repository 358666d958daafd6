import { createHash } from "node:crypto";
import { create, dfdaemonv1, schedulerv1, type MessageInitShape } from "@lacewing/api";
import { AsyncQueue, deferred, pieceRangeOf, type Deferred } from "@lacewing/common";
import type { ParentChannels, SyncRequest } from "../p2p/parent-peer.js";
import { PieceFetchError, type PieceRequest, type PieceSource } from "../p2p/piece-client.js";
import type { SchedulerPool } from "../scheduler/scheduler-pool.js";
import { PieceBuffers, type PieceBuffer } from "../storage/piece-buffers.js";

/**
 * Fakes for testing a download as a peer without processes or sockets: a
 * scheduler whose every AnnouncePeer stream the test drives, and parents
 * that hold bytes in memory and misbehave on cue.
 */

type RequestInit = MessageInitShape<typeof schedulerv1.AnnouncePeerRequestSchema>;
type ResponseInit = MessageInitShape<typeof schedulerv1.AnnouncePeerResponseSchema>;
type RequestCase = NonNullable<RequestInit["request"]>["case"];

/** One AnnouncePeer stream as the scheduler sees it. */
export class FakeAnnounceStream {
  readonly received: Array<NonNullable<RequestInit["request"]>> = [];
  readonly #responses = new AsyncQueue<schedulerv1.AnnouncePeerResponse>();
  readonly #waiters: Array<{ kind: RequestCase; from: number; done: Deferred<NonNullable<RequestInit["request"]>> }> = [];
  /** The client ended its side or cancelled. */
  closed = false;

  constructor(requests: AsyncIterable<RequestInit>, signal: AbortSignal | undefined) {
    signal?.addEventListener("abort", () => {
      this.closed = true;
      this.#responses.end();
    });
    void (async () => {
      for await (const request of requests) {
        if (request.request === undefined) continue;
        this.received.push(request.request);
        this.#wake();
      }
      this.closed = true;
    })();
  }

  get responses(): AsyncIterable<schedulerv1.AnnouncePeerResponse> {
    return this.#responses;
  }

  respond(response: ResponseInit): void {
    this.#responses.push(create(schedulerv1.AnnouncePeerResponseSchema, response));
  }

  /** The stream breaks, as when the scheduler goes away. */
  fail(message = "scheduler gone"): void {
    this.#responses.fail(new Error(message));
  }

  /** How many requests of `kind` arrived. */
  count(kind: RequestCase, match: (request: NonNullable<RequestInit["request"]>) => boolean = () => true): number {
    return this.received.filter((request) => request.case === kind && match(request)).length;
  }

  /** Resolves with the first request of `kind` received from index `from` on. */
  next(kind: RequestCase, from = 0): Promise<NonNullable<RequestInit["request"]>> {
    const done = deferred<NonNullable<RequestInit["request"]>>();
    this.#waiters.push({ kind, from, done });
    this.#wake();
    return done.promise;
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) {
      const found = this.received.slice(waiter.from).find((request) => request.case === waiter.kind);
      if (found === undefined) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.done.resolve(found);
    }
  }
}

/** A scheduler whose streams the test answers; `onStream` sees each new one. */
export class FakeScheduler implements Pick<SchedulerPool, "ownersOf" | "client" | "announceNow"> {
  readonly streams: FakeAnnounceStream[] = [];
  readonly #opened: Array<Deferred<FakeAnnounceStream>> = [];

  ownersOf(): string[] {
    return ["fake-scheduler:1"];
  }

  client(): ReturnType<SchedulerPool["client"]> {
    const announcePeer = (requests: AsyncIterable<RequestInit>, options: { signal?: AbortSignal } = {}): AsyncIterable<schedulerv1.AnnouncePeerResponse> => {
      const stream = new FakeAnnounceStream(requests, options.signal);
      this.streams.push(stream);
      this.#opened.shift()?.resolve(stream);
      return stream.responses;
    };
    return { announcePeer } as unknown as ReturnType<SchedulerPool["client"]>;
  }

  announceNow(): Promise<boolean> {
    return Promise.resolve(true);
  }

  /** The stream opened after the ones already seen. */
  stream(index: number): Promise<FakeAnnounceStream> {
    if (this.streams[index] !== undefined) return Promise.resolve(this.streams[index]);
    const opened = deferred<FakeAnnounceStream>();
    this.#opened.push(opened);
    return opened.promise.then(() => this.stream(index));
  }
}

/** How a fake parent answers one piece request. */
export type PieceBehaviour = "serve" | "corrupt" | "die" | "stall";

export interface FakeParentSpec {
  id: string;
  /** The task's bytes and piece length, as the parent holds them. */
  bytes: Buffer;
  pieceLength: number;
  /** Pieces it announces at once (all by default); more with `announce`. */
  holds?: number[];
  /** Says `finished` after announcing every piece. */
  finished?: boolean;
  behaviour?: (number: number) => PieceBehaviour;
}

interface FakeParentState extends FakeParentSpec {
  index: number;
  syncs: Array<AsyncQueue<dfdaemonv1.SyncPiecesResponse>>;
  requests: number[];
  /** Each request's stall timeout, in the order of `requests`. */
  timeouts: number[];
}

/** Parents in memory behind the ParentChannels a download uses; they verify nothing and may lie. */
export class FakeParents implements ParentChannels {
  readonly #parents: FakeParentState[] = [];
  readonly #buffers = new PieceBuffers(64 * 1024 * 1024);

  add(spec: FakeParentSpec): schedulerv1.CandidateParent {
    const total = Math.ceil(spec.bytes.byteLength / spec.pieceLength);
    const state: FakeParentState = {
      ...spec,
      holds: spec.holds ?? Array.from({ length: total }, (_, n) => n),
      index: this.#parents.length + 1,
      syncs: [],
      requests: [],
      timeouts: [],
    };
    this.#parents.push(state);
    return create(schedulerv1.CandidateParentSchema, {
      peerId: spec.id,
      host: { id: `${spec.id}-host`, ip: `10.0.0.${state.index}`, port: 1000 + state.index, downloadPort: 2000 + state.index },
    });
  }

  /** Piece numbers each parent was asked for, in order. */
  requestsTo(id: string): number[] {
    return this.#state(id).requests;
  }

  /** The stall timeout of each request the parent got. */
  timeoutsTo(id: string): number[] {
    return this.#state(id).timeouts;
  }

  /** The parent announces more pieces to every child syncing with it. */
  announce(id: string, numbers: number[]): void {
    const state = this.#state(id);
    for (const number of numbers) {
      state.holds!.push(number);
      for (const sync of state.syncs) sync.push(this.#pieceMessage(state, number));
    }
  }

  syncPieces(endpoint: string, request: SyncRequest, signal: AbortSignal): AsyncIterable<dfdaemonv1.SyncPiecesResponse> {
    const state = this.#parents.find((parent) => `10.0.0.${parent.index}:${1000 + parent.index}` === endpoint)!;
    const queue = new AsyncQueue<dfdaemonv1.SyncPiecesResponse>();
    state.syncs.push(queue);
    signal.addEventListener("abort", () => queue.end());
    const info = { taskId: request.taskId ?? "", contentLength: BigInt(state.bytes.byteLength), pieceLength: BigInt(state.pieceLength) };
    queue.push(create(dfdaemonv1.SyncPiecesResponseSchema, { response: { case: "grant", value: { token: `${state.id}-token` } } }));
    queue.push(create(dfdaemonv1.SyncPiecesResponseSchema, { response: { case: "taskInfo", value: info } }));
    for (const number of state.holds!) queue.push(this.#pieceMessage(state, number));
    if (state.finished === true) queue.push(create(dfdaemonv1.SyncPiecesResponseSchema, { response: { case: "finished", value: info } }));
    return queue;
  }

  subjectOf(): string {
    return "";
  }

  async fetchPiece(source: PieceSource, request: PieceRequest): Promise<PieceBuffer> {
    const state = this.#parents.find((parent) => 2000 + parent.index === source.port)!;
    state.requests.push(request.number);
    state.timeouts.push(request.timeoutMs);
    const behaviour = state.behaviour?.(request.number) ?? "serve";
    // Let the dispatcher start other requests first, as a network would.
    await new Promise((resolve) => setImmediate(resolve));
    if (behaviour === "die") throw new PieceFetchError("connect", `${state.id} died`);
    if (behaviour === "stall") {
      await new Promise<void>((_, reject) => {
        const timer = setTimeout(() => reject(new PieceFetchError("timeout", `${state.id} stalled`)), request.timeoutMs);
        request.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(new PieceFetchError("other", "download cancelled"));
        });
      });
    }
    const range = pieceRangeOf(request.number, state.pieceLength, state.bytes.byteLength);
    const lease = await this.#buffers.acquire(request.length);
    state.bytes.copy(lease.bytes, 0, range.offset, range.offset + range.length);
    if (behaviour === "corrupt") lease.bytes[0] = (lease.bytes[0]! + 1) & 0xff;
    if (createHash("sha256").update(lease.bytes).digest("hex") !== request.sha256) {
      lease.release();
      throw new PieceFetchError("corrupt", `piece ${request.number} from ${state.id} does not match`);
    }
    return lease;
  }

  #pieceMessage(state: FakeParentState, number: number): dfdaemonv1.SyncPiecesResponse {
    const range = pieceRangeOf(number, state.pieceLength, state.bytes.byteLength);
    return create(dfdaemonv1.SyncPiecesResponseSchema, {
      response: { case: "piece", value: { number, offset: BigInt(range.offset), length: BigInt(range.length) } },
    });
  }

  #state(id: string): FakeParentState {
    return this.#parents.find((parent) => parent.id === id)!;
  }
}

/** The scheduler's view of a task: its info and every piece's digest, as a task update says them. */
export function taskUpdateOf(taskId: string, bytes: Buffer, pieceLength: number): MessageInitShape<typeof schedulerv1.TaskUpdateSchema> {
  const total = Math.ceil(bytes.byteLength / pieceLength);
  return {
    taskInfo: { taskId, contentLength: BigInt(bytes.byteLength), pieceLength: BigInt(pieceLength), totalPieces: total },
    pieceDigests: Array.from({ length: total }, (_, number) => ({
      number,
      sha256: createHash("sha256")
        .update(bytes.subarray(number * pieceLength, (number + 1) * pieceLength))
        .digest(),
    })),
  };
}
