import {
  BUSY_BACKOFF_MS,
  CHOICE_SCAN,
  ELSEWHERE_BACKOFF_MS,
  RETRY_BUSY_MS,
  SuperSeed,
  pickNextPiece,
  type InflightRequest,
  type StoredTask,
} from "@lacewing/dfdaemon";
import type { Peer } from "@lacewing/scheduler";
import type { EventQueue } from "../engine/event-queue.js";
import type { Uplink } from "../network/uplink.js";
import type { SimOptions } from "./options.js";
import type { Answer, Session, SimScheduler } from "./sim-scheduler.js";

/** What hosts and downloads share: the clock, the scheduler, the task's geometry, the tallies. */
export interface World {
  readonly events: EventQueue;
  readonly options: SimOptions;
  readonly scheduler: SimScheduler;
  readonly random: () => number;
  readonly contentLength: number;
  readonly pieceLength: number;
  readonly totalPieces: number;
  readonly origin: SimHost;
  /** Pieces whose digest the scheduler has told its registered peers (task_update). */
  readonly digestKnown: Uint8Array;
  /** Downloads registered with the scheduler, which hear its task updates. */
  readonly registered: Set<SimDownload>;
  readonly traffic: Traffic;
  hostOf(hostId: string): SimHost | undefined;
  /** CPU ms per byte a flow into `receiver` costs (0 without a CPU model). */
  cpuPerByte(receiver: SimHost): number;
  finished(download: SimDownload): void;
}

export interface Traffic {
  /** Payload bytes between hosts of different zones. */
  crossZoneBytes: number;
  /** Payload bytes that arrived for a piece already held or no longer wanted (endgame losers, cancelled sends). */
  wastedBytes: number;
  refusals: Record<"busy" | "elsewhere", number>;
  endgameRequests: number;
  parentFailures: number;
}

export function pieceBytes(world: World, number: number): number {
  return Math.min(world.pieceLength, world.contentLength - number * world.pieceLength);
}

/**
 * One host: its uplink and the upload side of its daemon (the piece
 * protocol's connections, served one request at a time each, uploadLimit
 * pieces at once, super-seeding on a seed), plus the download it runs.
 * The origin is a host too, without a daemon.
 */
export class SimHost {
  readonly id: string;
  readonly kind: "origin" | "seed" | "peer";
  readonly zone: number;
  readonly uplink: Uplink;
  /** Pieces this host has announced to its children (SyncPieces). */
  readonly announced: Uint8Array;
  /** Children whose sync stream with this host is open. */
  readonly children = new Set<ParentLink>();
  sentBytes = 0;
  download: SimDownload | undefined;
  crashed = false;
  readonly #world: World;
  #active = 0;
  readonly #superSeed: SuperSeed | undefined;
  /** What SuperSeed reads of a task: whether it is finished and how many pieces it has. */
  readonly #superTask: { meta: { finished: boolean }; totalPieces: number };

  constructor(world: World, id: string, kind: "origin" | "seed" | "peer", zone: number, uplink: Uplink) {
    this.#world = world;
    this.id = id;
    this.kind = kind;
    this.zone = zone;
    this.uplink = uplink;
    this.announced = new Uint8Array(world.totalPieces);
    const window = world.options.daemon.superSeedWindowMs;
    this.#superSeed = kind === "seed" && window > 0 ? new SuperSeed(window) : undefined;
    this.#superTask = { meta: { finished: false }, totalPieces: world.totalPieces };
  }

  /** Delay of a message this host sends: the wire, plus the queue in front of a busy uplink. */
  latency(): number {
    const { latencyMs, queueMs } = this.#world.options;
    return latencyMs + (this.uplink.active > 0 ? queueMs : 0);
  }

  /** The host's download holds every piece: a seed then serves like any parent once each piece went out. */
  markFinished(): void {
    this.#superTask.meta.finished = true;
  }

  /** A stored piece goes out to every child syncing from this host. */
  announce(number: number): void {
    if (this.crashed || this.announced[number] === 1) return;
    this.announced[number] = 1;
    for (const link of this.children) link.child.onAnnounced(link, number);
  }

  /** A child opened SyncPieces: it gets the grant and every piece held so far, then each new one. */
  onSyncRequest(link: ParentLink): void {
    if (link.dropped) return;
    if (this.crashed) {
      this.#world.events.after(this.#world.options.latencyMs, () => link.child.onParentLost(link));
      return;
    }
    this.children.add(link);
    this.#world.events.after(this.latency(), () => link.child.onSynced(link));
  }

  /** The child closed its side (done with this parent): queued requests are dropped. */
  closeLink(link: ParentLink): void {
    this.children.delete(link);
    link.queue.length = 0;
  }

  onRequest(link: ParentLink, request: PieceRequest): void {
    if (this.crashed || link.dropped) return;
    link.queue.push(request);
    this.#serve(link);
  }

  /** One request at a time per connection, in order, as upload-server.ts serves them. */
  #serve(link: ParentLink): void {
    const world = this.#world;
    const { events } = world;
    if (link.serving || this.crashed) return;
    for (;;) {
      const request = link.queue.shift();
      if (request === undefined) return;
      if (request.cancelled) continue;
      if (this.#active >= world.options.daemon.uploadLimit) {
        this.#refuse(link, request, "busy", RETRY_BUSY_MS);
        continue;
      }
      let first = false;
      if (this.#superSeed !== undefined) {
        const admission = this.#superSeed.admit(this.#superTask as unknown as StoredTask, request.number, events.now);
        if (!admission.ok) {
          this.#refuse(link, request, "elsewhere", 0);
          continue;
        }
        first = admission.first;
      }
      this.#active++;
      link.serving = true;
      const bytes = pieceBytes(world, request.number);
      this.uplink.send(
        bytes * world.options.overhead,
        () => {
          this.#active--;
          link.serving = false;
          if (this.crashed) return;
          if (first) this.#superSeed!.done(this.#superTask as unknown as StoredTask, request.number, true, events.now);
          this.sentBytes += bytes;
          if (this.zone !== link.child.host.zone) world.traffic.crossZoneBytes += bytes;
          events.after(world.options.latencyMs, () => link.child.onPiece(request, bytes));
          if (!link.dropped) this.#serve(link);
        },
        world.cpuPerByte(link.child.host),
      );
      return;
    }
  }

  #refuse(link: ParentLink, request: PieceRequest, reason: "busy" | "elsewhere", retryAfterMs: number): void {
    this.#world.traffic.refusals[reason]++;
    this.#world.events.after(this.latency(), () => link.child.onRefused(request, reason, retryAfterMs));
  }

  /** The host dies: its daemon stops serving and downloading, and it stops announcing. */
  crash(): void {
    if (this.crashed) return;
    this.crashed = true;
    const { events, options } = this.#world;
    for (const link of this.children) events.after(options.latencyMs, () => link.child.onParentLost(link));
    this.children.clear();
    this.download?.fail();
    this.#world.scheduler.hostGone(this.id);
  }
}

/** One request of the piece protocol, as the child and the parent both see it. */
export interface PieceRequest extends InflightRequest {
  readonly number: number;
  readonly link: ParentLink;
  readonly duplicate: boolean;
  /** The child gave up on it (another copy won, the parent was dropped, the download ended). */
  cancelled: boolean;
}

/** A child's view of one parent (ParentPeer) and their connection. */
export class ParentLink {
  readonly id: string;
  readonly parent: SimHost;
  readonly child: SimDownload;
  /** Announced pieces the child still wants. */
  readonly useful = new Set<number>();
  /** Pieces this parent sent elsewhere (super-seeding), with the time until which not to ask it for them. */
  readonly elsewhere = new Map<number, number>();
  inflight = 0;
  /** The grant arrived (the sync stream's first message). */
  token = false;
  busyUntil = 0;
  bytes = 0;
  costMs = 0;
  dropped = false;
  /** Requests waiting on the parent's side of the connection. */
  readonly queue: PieceRequest[] = [];
  serving = false;

  constructor(id: string, parent: SimHost, child: SimDownload) {
    this.id = id;
    this.parent = parent;
    this.child = child;
  }

  get speed(): number {
    return this.costMs > 0 ? this.bytes / this.costMs : Number.POSITIVE_INFINITY;
  }

  holds(number: number): boolean {
    return this.token && this.parent.announced[number] === 1;
  }
}

type DownloadState = "idle" | "registering" | "p2p" | "origin" | "done" | "failed";

/**
 * One download as the daemon runs it: PeerTaskRun (register, refresh every
 * second while under 16 live parents, reschedule when stuck, back to source
 * when told or after too many reschedules) around PieceDispatcher (wanted
 * pieces, holders, in-flight requests; the choice itself is the daemon's
 * pickNextPiece), and back-to-source's ramped ranged workers.
 */
export class SimDownload {
  readonly host: SimHost;
  readonly peerId: string;
  readonly triggered: boolean;
  state: DownloadState = "idle";
  startedAt = Number.NaN;
  completedAt = Number.NaN;
  receivedBytes = 0;
  fromOrigin = 0;
  readonly held: Uint8Array;
  count = 0;
  /** Crash this host's daemon once it holds this many pieces (fault injection). */
  crashAt = -1;
  readonly #world: World;
  #session: Session | undefined;
  #lengthKnown = false;
  readonly #wanted = new Set<number>();
  readonly #holders: Int32Array;
  readonly #inflight = new Map<number, PieceRequest[]>();
  #requests = 0;
  readonly #parents = new Map<string, ParentLink>();
  #failedParents: string[] = [];
  #refreshing = false;
  #rescheduling = false;
  #reschedules = 0;
  #lastActivity = 0;
  #pumpQueued = false;
  #retryToken = 0;
  #idleToken = 0;
  /** Messages on the AnnouncePeer stream arrive in the order they were sent. */
  #streamClock = 0;

  constructor(world: World, host: SimHost, peerId: string, triggered: boolean) {
    this.#world = world;
    this.host = host;
    this.peerId = peerId;
    this.triggered = triggered;
    this.held = new Uint8Array(world.totalPieces);
    this.#holders = new Int32Array(world.totalPieces);
  }

  get parentCount(): number {
    return this.#parents.size;
  }

  get reschedules(): number {
    return this.#reschedules;
  }

  start(): void {
    const { events, scheduler } = this.#world;
    this.state = "registering";
    this.startedAt = events.now;
    this.#lastActivity = events.now;
    this.#toScheduler(() => {
      if (this.state !== "registering") return;
      this.#session = scheduler.register(this.host.id, this.peerId, this.triggered, (answer) => this.#answered(answer, (a) => this.#onFirstAnswer(a)));
      this.#world.registered.add(this);
    });
  }

  /** The task's length arrived (register answer or task_update): every piece with a digest becomes wanted. */
  learnLength(): void {
    if (this.#lengthKnown || (this.state !== "p2p" && this.state !== "registering")) return;
    this.#lengthKnown = true;
    for (let number = 0; number < this.#world.totalPieces; number++) this.#wantIfAskable(number);
    this.#activity();
  }

  digestLearned(number: number): void {
    if (!this.#lengthKnown || (this.state !== "p2p" && this.state !== "registering")) return;
    this.#lastActivity = this.#world.events.now;
    // A pump can only start something if the piece became askable at a parent (the dispatcher pumps regardless; the outcome is the same).
    if (this.#wantIfAskable(number)) this.#pumpIfRoom();
  }

  onSynced(link: ParentLink): void {
    if (link.dropped || this.state !== "p2p") return;
    link.token = true;
    const announced = link.parent.announced;
    for (let number = 0; number < announced.length; number++) {
      if (announced[number] !== 1) continue;
      this.#holders[number]!++;
      if (this.#wanted.has(number)) link.useful.add(number);
    }
    this.#activity();
  }

  onAnnounced(link: ParentLink, number: number): void {
    if (link.dropped || !link.token || this.state !== "p2p") return;
    this.#holders[number]!++;
    this.#lastActivity = this.#world.events.now;
    if (!this.#wanted.has(number)) return;
    link.useful.add(number);
    this.#pumpIfRoom();
  }

  onPiece(request: PieceRequest, bytes: number): void {
    const world = this.#world;
    if (request.cancelled || this.state !== "p2p") {
      world.traffic.wastedBytes += bytes;
      return;
    }
    const { number, link } = request;
    this.#settle(request);
    if (!this.#unwant(number)) {
      world.traffic.wastedBytes += bytes;
      return;
    }
    for (const other of this.#inflight.get(number) ?? []) {
      other.cancelled = true;
      this.#settle(other);
    }
    const costMs = world.events.now - request.startedAt;
    link.bytes += bytes;
    link.costMs += Math.max(costMs, 1);
    this.#lastActivity = world.events.now;
    this.#store(number, bytes, link.id, costMs);
    if (this.state === "p2p") this.#queuePump();
  }

  onRefused(request: PieceRequest, reason: "busy" | "elsewhere", retryAfterMs: number): void {
    if (request.cancelled || this.state !== "p2p") return;
    this.#settle(request);
    const now = this.#world.events.now;
    if (reason === "elsewhere") request.link.elsewhere.set(request.number, now + ELSEWHERE_BACKOFF_MS);
    else request.link.busyUntil = now + (retryAfterMs || BUSY_BACKOFF_MS);
    this.#queuePump();
  }

  /** The parent's sync stream and connection broke (it crashed): dropped and reported, as PieceDispatcher#fail does. */
  onParentLost(link: ParentLink): void {
    if (link.dropped || this.state !== "p2p") return;
    for (const request of [...this.#inflightTo(link)]) {
      request.cancelled = true;
      this.#settle(request);
    }
    this.#drop(link);
    this.#failedParents.push(link.id);
    this.#world.traffic.parentFailures++;
    const session = this.#session;
    if (session !== undefined) this.#toScheduler(() => this.#world.scheduler.pieceFailed(session, link.id));
    this.#queuePump();
  }

  /** This host's daemon died. */
  fail(): void {
    if (this.state === "done" || this.state === "failed") return;
    this.#stopPeers();
    this.state = "failed";
    this.#world.registered.delete(this);
    this.#world.finished(this);
  }

  #answered(answer: Answer, then: (answer: Answer) => void): void {
    this.#world.events.after(this.#world.options.latencyMs, () => {
      if (this.state === "done" || this.state === "failed" || this.state === "origin") return;
      then(answer);
    });
  }

  #onFirstAnswer(answer: Answer): void {
    if (answer.kind === "back_to_source") {
      this.#backToSource();
      return;
    }
    if (answer.kind === "empty") throw new Error("the simulated task is never empty");
    this.state = "p2p";
    if (answer.contentLength >= 0) this.learnLength();
    this.#addParents(answer.parents);
    this.#world.events.after(this.#world.options.daemon.refreshIntervalMs, () => this.#refreshTick());
    this.#queuePump();
  }

  #onAnswer(answer: Answer): void {
    if (this.state !== "p2p") return;
    if (answer.kind === "parents") {
      if (answer.contentLength >= 0) this.learnLength();
      this.#addParents(answer.parents);
    } else if (answer.kind === "back_to_source") this.#backToSource();
    this.#queuePump();
  }

  #refreshTick(): void {
    if (this.state !== "p2p") return;
    const { events, options, scheduler } = this.#world;
    events.after(options.daemon.refreshIntervalMs, () => this.#refreshTick());
    const live = this.#liveParentIds();
    if (this.#refreshing || live.length >= options.daemon.maxLiveParents) return;
    this.#refreshing = true;
    const failed = this.#takeFailedParents();
    const session = this.#session!;
    this.#toScheduler(() =>
      scheduler.refresh(session, live, failed, (answer) =>
        this.#world.events.after(options.latencyMs, () => {
          this.#refreshing = false;
          this.#onAnswer(answer);
        }),
      ),
    );
  }

  #addParents(parents: readonly Peer[]): void {
    const world = this.#world;
    for (const peer of parents) {
      if (this.#parents.has(peer.id) || peer.hostId === this.host.id) continue;
      const parentHost = world.hostOf(peer.hostId);
      if (parentHost === undefined) continue;
      const link = new ParentLink(peer.id, parentHost, this);
      this.#parents.set(peer.id, link);
      world.events.after(this.host.latency(), () => parentHost.onSyncRequest(link));
    }
    this.#activity();
  }

  /** True when a parent now has the piece to give. */
  #wantIfAskable(number: number): boolean {
    if (this.held[number] === 1 || this.#inflight.has(number) || this.#wanted.has(number)) return false;
    if (this.#world.digestKnown[number] !== 1) return false;
    this.#wanted.add(number);
    let useful = false;
    for (const link of this.#parents.values())
      if (!link.dropped && link.holds(number)) {
        link.useful.add(number);
        useful = true;
      }
    return useful;
  }

  /** Pumps unless every request slot is taken, when a pump would start nothing and find nothing idle. */
  #pumpIfRoom(): void {
    if (this.#requests < this.#world.options.daemon.peerConcurrency) this.#queuePump();
  }

  #unwant(number: number): boolean {
    if (!this.#wanted.delete(number)) return false;
    for (const link of this.#parents.values()) link.useful.delete(number);
    return true;
  }

  #activity(): void {
    this.#lastActivity = this.#world.events.now;
    this.#queuePump();
  }

  /** Everything that happens at one instant is looked at once: one pump per instant, not one per message. */
  #queuePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    this.#world.events.after(0, () => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.state !== "p2p") return;
    const { events, options } = this.#world;
    if (this.#lengthKnown) {
      while (this.#requests < options.daemon.peerConcurrency) {
        const choice = this.#choose();
        if (choice === undefined) break;
        this.#start(choice.piece, this.#parents.get(choice.parentId)!, choice.duplicate);
      }
    }
    if (this.#requests > 0 || this.#rescheduling) return;
    if (this.#liveParentIds().length === 0) {
      this.#stuck();
      return;
    }
    const idleTimeoutMs = options.daemon.pieceTimeoutMs * 2;
    const idle = events.now - this.#lastActivity;
    if (idle >= idleTimeoutMs) {
      this.#stuck();
      return;
    }
    const token = ++this.#idleToken;
    events.after(idleTimeoutMs - idle + 10, () => {
      if (token === this.#idleToken) this.#pump();
    });
  }

  #choose(): { parentId: string; piece: number; duplicate: boolean } | undefined {
    const { events, options, random } = this.#world;
    const now = events.now;
    const perParentLimit = Math.min(options.daemon.parentPipeline, options.daemon.peerConcurrency);
    const views = [];
    let backoff = Number.POSITIVE_INFINITY;
    let ready = false;
    for (const link of this.#parents.values()) {
      if (link.dropped) continue;
      if (link.busyUntil > now) backoff = Math.min(backoff, link.busyUntil - now);
      for (const until of link.elsewhere.values()) if (until > now) backoff = Math.min(backoff, until - now);
      const usable = link.token && link.busyUntil <= now;
      if (usable && link.inflight < perParentLimit) ready = true;
      views.push({ id: link.id, useful: link.useful, inflight: link.inflight, usable, speed: link.speed, elsewhere: link.elsewhere });
    }
    // With no parent ready, pickNextPiece answers undefined before it looks at anything; not asking saves the simulator its cost.
    const choice = !ready
      ? undefined
      : pickNextPiece({
          parents: views,
          holders: (number) => this.#holders[number] ?? 0,
          inflight: this.#inflight,
          perParentLimit,
          window: Math.max(4, options.daemon.peerConcurrency),
          scan: CHOICE_SCAN,
          now,
          random,
        });
    if (choice === undefined && backoff !== Number.POSITIVE_INFINITY) {
      const token = ++this.#retryToken;
      events.after(backoff + 5, () => {
        if (token === this.#retryToken) this.#queuePump();
      });
    }
    return choice;
  }

  #start(number: number, link: ParentLink, duplicate: boolean): void {
    const { events, traffic } = this.#world;
    const request: PieceRequest = { parentId: link.id, startedAt: events.now, number, link, duplicate, cancelled: false };
    const requests = this.#inflight.get(number) ?? [];
    requests.push(request);
    this.#inflight.set(number, requests);
    this.#requests++;
    link.inflight++;
    if (duplicate) traffic.endgameRequests++;
    events.after(this.host.latency(), () => link.parent.onRequest(link, request));
  }

  /** The request is over for the child (answered, lost the endgame, or abandoned). */
  #settle(request: PieceRequest): void {
    const requests = this.#inflight.get(request.number);
    if (requests === undefined || !requests.includes(request)) return;
    const left = requests.filter((other) => other !== request);
    if (left.length > 0) this.#inflight.set(request.number, left);
    else this.#inflight.delete(request.number);
    this.#requests--;
    request.link.inflight--;
  }

  *#inflightTo(link: ParentLink): Generator<PieceRequest> {
    for (const requests of this.#inflight.values()) for (const request of requests) if (request.link === link) yield request;
  }

  #liveParentIds(): string[] {
    const live: string[] = [];
    for (const link of this.#parents.values()) if (!link.dropped) live.push(link.id);
    return live;
  }

  #takeFailedParents(): string[] {
    const failed = this.#failedParents;
    this.#failedParents = [];
    return failed;
  }

  #drop(link: ParentLink): void {
    if (link.dropped) return;
    link.dropped = true;
    if (link.token) {
      const announced = link.parent.announced;
      for (let number = 0; number < announced.length; number++) if (announced[number] === 1) this.#holders[number]!--;
    }
    link.useful.clear();
    link.parent.closeLink(link);
  }

  /** No parent can make progress: ask for new ones, or go back to source after too many. */
  #stuck(): void {
    const { options, scheduler } = this.#world;
    if (++this.#reschedules > options.daemon.maxReschedules) {
      this.#backToSource();
      return;
    }
    this.#rescheduling = true;
    const failed = this.#takeFailedParents();
    const session = this.#session!;
    this.#toScheduler(() =>
      scheduler.reschedule(session, failed, (answer) =>
        this.#world.events.after(options.latencyMs, () => {
          this.#rescheduling = false;
          this.#onAnswer(answer);
        }),
      ),
    );
  }

  #stopPeers(): void {
    for (const requests of this.#inflight.values()) for (const request of requests) request.cancelled = true;
    for (const requests of [...this.#inflight.values()]) for (const request of [...requests]) this.#settle(request);
    for (const link of this.#parents.values()) this.#drop(link);
    this.#wanted.clear();
  }

  #backToSource(): void {
    const { events, origin, scheduler } = this.#world;
    this.#stopPeers();
    this.state = "origin";
    const session = this.#session;
    if (session !== undefined) this.#toScheduler(() => scheduler.backToSourceStarted(session));
    // The probe (Range: bytes=0-0), then ranged workers ramping from one to originConcurrency.
    events.after(this.host.latency(), () => {
      origin.sentBytes += 1;
      this.fromOrigin += 1;
      events.after(origin.latency(), () => this.#fetchRanged());
    });
  }

  #fetchRanged(): void {
    if (this.state !== "origin") return;
    const world = this.#world;
    const session = this.#session;
    if (session !== undefined) this.#toScheduler(() => world.scheduler.taskInfo(session, world.contentLength, world.pieceLength));
    const missing: number[] = [];
    for (let number = 0; number < world.totalPieces; number++) if (this.held[number] !== 1) missing.push(number);
    let next = 0;
    let workers = 0;
    const spawn = (): void => {
      if (workers >= Math.min(world.options.daemon.originConcurrency, missing.length)) return;
      workers++;
      work();
    };
    const work = (): void => {
      if (this.state !== "origin" || next >= missing.length) return;
      const number = missing[next++]!;
      const started = world.events.now;
      const bytes = pieceBytes(world, number);
      world.events.after(this.host.latency(), () =>
        world.origin.uplink.send(
          bytes * world.options.overhead,
          () => {
            world.origin.sentBytes += bytes;
            if (world.origin.zone !== this.host.zone) world.traffic.crossZoneBytes += bytes;
            world.events.after(world.options.latencyMs, () => {
              if (this.state !== "origin") return;
              this.fromOrigin += bytes;
              this.#store(number, bytes, "", world.events.now - started);
              spawn();
              work();
            });
          },
          world.cpuPerByte(this.host),
        ),
      );
    };
    spawn();
  }

  /** A verified piece is durable: the scheduler hears of it, and so do this host's children. */
  #store(number: number, bytes: number, parentId: string, costMs: number): void {
    const world = this.#world;
    this.held[number] = 1;
    this.count++;
    this.receivedBytes += bytes;
    const session = this.#session;
    const host = this.host;
    world.events.after(host.latency(), () => host.announce(number));
    if (session !== undefined) this.#toScheduler(() => world.scheduler.pieceFinished(session, number, parentId, bytes, costMs));
    if (this.count === this.crashAt) {
      host.crash();
      return;
    }
    if (this.count === world.totalPieces) this.#finish();
  }

  #finish(): void {
    const world = this.#world;
    this.#stopPeers();
    this.state = "done";
    this.completedAt = world.events.now;
    this.host.markFinished();
    world.registered.delete(this);
    const session = this.#session;
    if (session !== undefined) this.#toScheduler(() => world.scheduler.peerFinished(session));
    world.finished(this);
  }

  /** Sends on the AnnouncePeer stream: after the host's delay, never before an earlier message. */
  #toScheduler(deliver: () => void): void {
    const { events } = this.#world;
    const at = Math.max(events.now + this.host.latency(), this.#streamClock);
    this.#streamClock = at;
    events.at(at, () => {
      if (this.host.crashed) return;
      deliver();
    });
  }
}
