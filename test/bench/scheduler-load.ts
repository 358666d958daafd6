// A load worker of the scheduler benchmark, forked by test/bench/scheduler.ts.
// It plays many hosts at once over real gRPC and mutual TLS: one connection
// (one peer certificate) per group of hosts, as many nodes behind one
// address would be, announcing them to every scheduler and driving their
// peers' AnnouncePeer streams the way dfdaemons do (register, task updates,
// piece reports, refreshes for more parents, peer finished). The coordinator
// runs it phase by phase; each phase answers with counts and latencies.
import { createHash } from "node:crypto";
import { HostType, createClient, schedulerv1, type HostSchema, type MessageInitShape, type RpcClient } from "@lacewing/api";
import { AsyncQueue, deferred, errorMessage, taskIdOf, tlsMaterialOf, type Deferred, type Security } from "@lacewing/common";
import { PIECE_LENGTH, hostOfPeer, layoutOf, names, ownerOf, type BenchOptions } from "./scheduler-plan.js";

export interface WorkerInit {
  kind: "init";
  worker: number;
  options: BenchOptions;
  schedulers: string[];
  ca: string;
  /** The connections this worker speaks through, each with its own peer certificate. */
  connections: Array<{ index: number; cert: string; key: string }>;
}

export type Phase = "announce" | "sources" | "downloads" | "probes";

export interface PhaseCommand {
  kind: "phase";
  phase: Phase;
}

export interface PhaseResult {
  kind: "done";
  phase: Phase;
  worker: number;
  /** Calls or reports this phase made (announces, registrations, piece reports). */
  operations: number;
  /** register → first parents, ms (downloads and probes). */
  latencies: number[];
  /** Answers that were not what a daemon expects here (back to source for a child, no parents, an error). */
  unexpected: number;
  firstProblem?: string;
  /** Task updates received, and the piece digests they carried. */
  updates: number;
  digests: number;
  refreshes: number;
  /** Re-announcements made in the background (every host, every announce interval) since the last phase. */
  reannounces: number;
}

type Client = RpcClient<typeof schedulerv1.Scheduler>;
type RequestInit = MessageInitShape<typeof schedulerv1.AnnouncePeerRequestSchema>;
type Answer = schedulerv1.AnnouncePeerResponse["response"];

/** How often a daemon announces its host by default (dfdaemon's announceInterval), and so how often the bench re-announces. */
const ANNOUNCE_INTERVAL_S = 10;
/**
 * The interval the hosts announce: 30 s, a setting daemons may have, so the
 * scheduler drops a host only after a minute without news. They still
 * announce every ANNOUNCE_INTERVAL_S; the margin is for a load worker starved
 * of CPU on a small shared machine, whose late re-announcements would
 * otherwise expire hosts mid-run.
 */
const ANNOUNCED_INTERVAL_S = 30;
/** The daemon's default upload slots (uploadLimit), announced as concurrent_upload_limit. */
const UPLOAD_LIMIT = 32;
/** A downloading daemon asks for more parents about once a second; at ~16 pieces a second that is once per 16 reports. */
const REFRESH_EVERY_PIECES = 16;
/** A daemon stops asking for more parents once it has this many. */
const MAX_PARENTS = 16;
/** Calls a worker keeps in flight at once when it announces or registers sources. */
const IN_FLIGHT = 64;
const ANSWER_TIMEOUT_MS = 60_000;

/** One peer's AnnouncePeer stream, with each register or reschedule paired with its answer (the scheduler answers them in order). */
class PeerStream {
  readonly #requests = new AsyncQueue<RequestInit>();
  readonly #waiting: Array<Deferred<Answer>> = [];
  readonly #ids: { hostId: string; taskId: string; peerId: string };
  readonly #abort = new AbortController();
  #error: unknown;
  updates = 0;
  digests = 0;

  constructor(client: Client, ids: { hostId: string; taskId: string; peerId: string }) {
    this.#ids = ids;
    void this.#read(client.announcePeer(this.#requests, { signal: this.#abort.signal }));
  }

  send(body: NonNullable<RequestInit["request"]>): void {
    this.#requests.push({ ...this.#ids, request: body });
  }

  ask(body: NonNullable<RequestInit["request"]>): Promise<Answer> {
    if (this.#error !== undefined) return Promise.reject(new Error(`stream broke: ${errorMessage(this.#error)}`));
    const answer = deferred<Answer>();
    this.#waiting.push(answer);
    this.send(body);
    const timer = setTimeout(() => answer.reject(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
    return answer.promise.finally(() => clearTimeout(timer));
  }

  async #read(responses: AsyncIterable<schedulerv1.AnnouncePeerResponse>): Promise<void> {
    try {
      for await (const { response } of responses) {
        if (response.case === "taskUpdate") {
          this.updates++;
          this.digests += response.value.pieceDigests.length;
        } else if (response.case !== undefined) this.#waiting.shift()?.resolve(response);
      }
      this.#error = new Error("the scheduler ended the stream");
    } catch (err) {
      this.#error = err;
    }
    for (const waiting of this.#waiting.splice(0)) waiting.reject(this.#error);
  }

  close(): void {
    this.#requests.end();
    setTimeout(() => this.#abort.abort(), 2_000).unref();
  }
}

let init: WorkerInit;
let options: BenchOptions;
/** Per connection: one client per scheduler. */
const clients = new Map<number, Map<string, Client>>();
const ownHosts: number[] = [];
const streams = new Map<string, PeerStream>();
const taskIds = new Map<number, string>();
let reannounces = 0;
let reannounceTimer: NodeJS.Timeout | undefined;

function hostInfo(host: number): MessageInitShape<typeof HostSchema> {
  return {
    id: names.host(host),
    ip: `10.${(host >> 16) & 255}.${(host >> 8) & 255}.${host & 255}`,
    hostname: names.host(host),
    port: 65000,
    downloadPort: 65001,
    type: HostType.NORMAL,
    idc: `idc-${host % 4}`,
    location: `region-${host % 2}|zone-${host % 4}|rack-${host % 32}`,
    concurrentUploadLimit: UPLOAD_LIMIT,
    concurrentUploadCount: 0,
    announceIntervalSeconds: ANNOUNCED_INTERVAL_S,
  };
}

function taskIdOfTask(task: number): string {
  let id = taskIds.get(task);
  if (id === undefined) {
    id = taskIdOf({ url: names.url(task) });
    taskIds.set(task, id);
  }
  return id;
}

const digests = new Map<number, Buffer[]>();

/** The piece's bytes are never made: its digest only has to be the same for every peer of the task. */
function pieceDigest(task: number, number: number): Buffer {
  let ofTask = digests.get(task);
  if (ofTask === undefined) {
    ofTask = Array.from({ length: options.pieces }, (_, n) => createHash("sha256").update(`${task}/${n}`).digest());
    digests.set(task, ofTask);
  }
  return ofTask[number]!;
}

function clientFor(host: number, scheduler: string): Client {
  const connection = layoutOf(options).connectionOfHost(host);
  const client = clients.get(connection)?.get(scheduler);
  if (client === undefined) throw new Error(`host ${host} is not this worker's`);
  return client;
}

function isOwnHost(host: number): boolean {
  const layout = layoutOf(options);
  return layout.workerOfConnection(layout.connectionOfHost(host)) === init.worker;
}

/** Runs `work` over `items` with at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}

function result(phase: Phase): PhaseResult {
  const done: PhaseResult = {
    kind: "done",
    phase,
    worker: init.worker,
    operations: 0,
    latencies: [],
    unexpected: 0,
    updates: 0,
    digests: 0,
    refreshes: 0,
    reannounces,
  };
  reannounces = 0;
  return done;
}

function noteProblem(done: PhaseResult, problem: string): void {
  done.unexpected++;
  done.firstProblem ??= problem;
}

async function announce(done: PhaseResult): Promise<void> {
  await eachLimited(ownHosts, IN_FLIGHT, async (host) => {
    for (const scheduler of init.schedulers) {
      try {
        const answer = await clientFor(host, scheduler).announceHost({ host: hostInfo(host) }, { timeoutMs: ANSWER_TIMEOUT_MS });
        if (!answer.newHost) noteProblem(done, `${names.host(host)} was not new to ${scheduler}`);
      } catch (err) {
        noteProblem(done, `announce: ${errorMessage(err)}`);
      }
      done.operations++;
    }
  });
  startReannouncing();
}

/** Every host announces again every interval, as daemons do, spread over the interval; otherwise the scheduler drops them. */
function startReannouncing(): void {
  // Small ticks: a burst of re-announcements every 100 ms held the scheduler ~20 ms at 10 000 hosts and showed up as register latency.
  const tickMs = 10;
  const perTick = ownHosts.length / ((ANNOUNCE_INTERVAL_S * 1000) / tickMs);
  let cursor = 0;
  let owed = 0;
  reannounceTimer = setInterval(() => {
    owed += perTick;
    for (; owed >= 1; owed--) {
      const host = ownHosts[cursor++ % ownHosts.length]!;
      for (const scheduler of init.schedulers)
        clientFor(host, scheduler)
          .announceHost({ host: hostInfo(host) }, { timeoutMs: ANSWER_TIMEOUT_MS })
          .then(
            () => reannounces++,
            () => undefined,
          );
    }
  }, tickMs);
  reannounceTimer.unref();
}

/** Peers `index` of every task whose host is this worker's. */
function peersAt(index: number): Array<{ task: number; host: number }> {
  const peers: Array<{ task: number; host: number }> = [];
  for (let task = 0; task < options.tasks; task++) {
    const host = hostOfPeer(task, index, options);
    if (isOwnHost(host)) peers.push({ task, host });
  }
  return peers;
}

function openStream(task: number, index: number, host: number): PeerStream {
  const taskId = taskIdOfTask(task);
  const stream = new PeerStream(clientFor(host, ownerOf(taskId, init.schedulers)), { hostId: names.host(host), taskId, peerId: names.peer(task, index) });
  streams.set(names.peer(task, index), stream);
  return stream;
}

function register(stream: PeerStream, task: number): Promise<Answer> {
  return stream.ask({ case: "register", value: { download: { url: names.url(task) } } });
}

/** The first peer of each task: sent to the origin (no seed peer), it reports the task's length and every piece with its digest. */
async function sources(done: PhaseResult): Promise<void> {
  const contentLength = BigInt(options.pieces * PIECE_LENGTH);
  await eachLimited(peersAt(0), IN_FLIGHT, async ({ task, host }) => {
    const stream = openStream(task, 0, host);
    try {
      const answer = await register(stream, task);
      if (answer.case !== "needBackToSource") noteProblem(done, `the origin fetcher of task ${task} was answered ${answer.case}`);
      stream.send({ case: "backToSourceStarted", value: {} });
      stream.send({ case: "taskInfo", value: { info: { taskId: taskIdOfTask(task), contentLength, pieceLength: BigInt(PIECE_LENGTH) } } });
      for (let number = 0; number < options.pieces; number++) {
        stream.send({ case: "pieceFinished", value: { piece: { number, length: BigInt(PIECE_LENGTH), sha256: pieceDigest(task, number), costMs: 20 } } });
        done.operations++;
      }
      stream.send({ case: "peerFinished", value: { contentLength, totalPieces: options.pieces, bytesFromOrigin: contentLength } });
      // Answered only once every report before it was handled: the phase ends when the scheduler has taken them all.
      await stream.ask({ case: "reschedule", value: { refresh: true } });
    } catch (err) {
      noteProblem(done, `origin fetcher of task ${task}: ${errorMessage(err)}`);
    }
    // A daemon ends the stream once its download is done; the finished peer stays a parent.
    stream.close();
    streams.delete(names.peer(task, 0));
  });
}

/**
 * Every other peer downloads as a daemon does: it registers and must be
 * handed parents at once (register → parents is timed), reports each piece
 * as landed from the origin fetcher, asks for more parents every
 * REFRESH_EVERY_PIECES pieces until it has MAX_PARENTS, says it finished and
 * ends its stream; the finished peer stays registered as a parent. This
 * worker's share of `downloads` run at once, each lane taking the next peer
 * when its download ends, so reports flow as fast as the scheduler takes
 * them while the peers registered grow to every peer of every task.
 */
async function downloads(done: PhaseResult): Promise<void> {
  const contentLength = BigInt(options.pieces * PIECE_LENGTH);
  // Peer 1 of every task first, then peer 2 …: every task has a download running from the start.
  const all = Array.from({ length: options.peersPerTask - 1 }, (_, i) => peersAt(i + 1).map((peer) => ({ ...peer, index: i + 1 }))).flat();
  const lanes = Math.max(1, Math.round(options.downloads / options.workers));
  await eachLimited(all, lanes, async ({ task, host, index }) => {
    const stream = openStream(task, index, host);
    const parentId = names.peer(task, 0);
    try {
      const started = performance.now();
      const answer = await register(stream, task);
      if (answer.case === "normalTask" && answer.value.candidateParents.length > 0) done.latencies.push(performance.now() - started);
      else noteProblem(done, `peer ${index} of task ${task} was answered ${answer.case} without parents`);
      const known = new Set([parentId]);
      for (let number = 0; number < options.pieces; number++) {
        stream.send({
          case: "pieceFinished",
          value: { piece: { number, parentId, length: BigInt(PIECE_LENGTH), sha256: pieceDigest(task, number), costMs: 20 } },
        });
        done.operations++;
        if ((number + 1) % REFRESH_EVERY_PIECES === 0 && known.size < MAX_PARENTS) {
          const more = await stream.ask({ case: "reschedule", value: { refresh: true, knownParentIds: [...known] } });
          done.refreshes++;
          if (more.case === "normalTask") for (const parent of more.value.candidateParents) known.add(parent.peerId);
        }
      }
      stream.send({ case: "peerFinished", value: { contentLength, totalPieces: options.pieces, bytesFromPeers: contentLength } });
      // Answered only once every report before it was handled: the download ends when the scheduler has taken them all.
      await stream.ask({ case: "reschedule", value: { refresh: true, knownParentIds: [...known] } });
    } catch (err) {
      noteProblem(done, `peer ${index} of task ${task}: ${errorMessage(err)}`);
    }
    stream.close();
    streams.delete(names.peer(task, index));
  });
}

/** With every peer registered, one more peer joins each of the first `probes` tasks, one at a time per worker, then leaves. */
async function probes(done: PhaseResult): Promise<void> {
  for (const { task, host } of peersAt(options.peersPerTask)) {
    if (task >= options.probes) continue;
    const stream = openStream(task, options.peersPerTask, host);
    const started = performance.now();
    try {
      const answer = await register(stream, task);
      if (answer.case === "normalTask" && answer.value.candidateParents.length > 0) done.latencies.push(performance.now() - started);
      else noteProblem(done, `probe of task ${task} was answered ${answer.case} without parents`);
    } catch (err) {
      noteProblem(done, `probe of task ${task}: ${errorMessage(err)}`);
    }
    done.operations++;
    stream.close();
    streams.delete(names.peer(task, options.peersPerTask));
  }
}

const PHASES: Record<Phase, (done: PhaseResult) => Promise<void>> = { announce, sources, downloads, probes };

function setUp(message: WorkerInit): void {
  init = message;
  options = message.options;
  const layout = layoutOf(options);
  for (const connection of message.connections) {
    const security: Security = { mode: "tls", material: tlsMaterialOf({ ca: message.ca, cert: connection.cert, key: connection.key }, "peer") };
    const perScheduler = new Map<string, Client>();
    for (const scheduler of message.schedulers)
      perScheduler.set(scheduler, createClient(schedulerv1.Scheduler, scheduler, { security, serverRoles: ["scheduler"] }));
    clients.set(connection.index, perScheduler);
  }
  for (let host = 0; host < options.hosts; host++) if (layout.workerOfConnection(layout.connectionOfHost(host)) === message.worker) ownHosts.push(host);
}

process.on("message", (message: WorkerInit | PhaseCommand | { kind: "close" }) => {
  if (message.kind === "init") {
    setUp(message);
    process.send!({ kind: "ready" });
    return;
  }
  if (message.kind === "close") {
    clearInterval(reannounceTimer);
    for (const stream of streams.values()) stream.close();
    for (const perScheduler of clients.values()) for (const client of perScheduler.values()) client.close();
    process.disconnect();
    return;
  }
  const done = result(message.phase);
  PHASES[message.phase](done).then(
    () => {
      for (const stream of streams.values()) {
        done.updates += stream.updates;
        done.digests += stream.digests;
        stream.updates = stream.digests = 0;
      }
      process.send!(done);
    },
    (err: unknown) => {
      noteProblem(done, errorMessage(err));
      process.send!(done);
    },
  );
});
