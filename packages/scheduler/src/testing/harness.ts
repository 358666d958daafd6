import { createHash } from "node:crypto";
import { afterEach } from "node:test";
import { createClient, dfdaemonv1, RpcServer, schedulerv1, type MessageInitShape, type RpcClient } from "@lacewing/api";
import { AsyncQueue, LocalPki, taskIdOf, type Role, type Security } from "@lacewing/common";
import { SchedulerServer, type SchedulerServerOptions } from "../scheduler-server.js";
import type { SchedulerConfig } from "../config.js";
import { hostInfo, type HostFields } from "./fixtures.js";

type RequestInit = MessageInitShape<typeof schedulerv1.AnnouncePeerRequestSchema>;
type RequestBody = NonNullable<RequestInit["request"]>;
export type SchedulerClient = RpcClient<typeof schedulerv1.Scheduler>;

export const URL_1 = "http://origin.test/files/big.bin";
export const TASK_1 = taskIdOf({ url: URL_1 });
/** The piece size the harness's back-to-source peers report. */
export const PIECE_LENGTH = 4 * 1024 * 1024;

/** The cluster CA of the tests in this process. */
export const pki = new LocalPki();

/** The digest the harness's origin fetches report for piece `number` of any task. */
export function pieceSha256(number: number): Buffer {
  return createHash("sha256").update(`piece-${number}`).digest();
}

/** A scheduler client holding a certificate of `role` (and holder `name`). */
export function clientAs(address: string, role: Role, name = ""): SchedulerClient {
  return createClient(schedulerv1.Scheduler, address, { security: pki.security(role, name), serverRoles: ["scheduler"] });
}

/**
 * A TLS scheduler on a loopback port, a client holding a seed certificate
 * (a cluster member: it may announce seeds and normal hosts) and an admin
 * client holding the manager's.
 */
export async function startScheduler(
  config: Partial<SchedulerConfig> = {},
  options: Omit<SchedulerServerOptions, "config"> = {},
): Promise<{ scheduler: SchedulerServer; client: SchedulerClient; admin: SchedulerClient; close: () => Promise<void> }> {
  const security: Security = options.security ?? pki.security("scheduler");
  const scheduler = new SchedulerServer({ config: { listen: "127.0.0.1:0", logLevel: "silent", scheduleTimeout: 3_000, ...config }, ...options, security });
  await scheduler.start();
  const client = clientAs(scheduler.address, "seed", "test-node");
  const admin = clientAs(scheduler.address, "manager");
  return {
    scheduler,
    client,
    admin,
    close: async () => {
      client.close();
      admin.close();
      await scheduler.close();
    },
  };
}

export async function announce(client: SchedulerClient, id: string, fields: HostFields = {}): Promise<void> {
  await client.announceHost({ host: hostInfo(id, fields) });
}

/** One AnnouncePeer stream driven by a test, like a daemon's download would. */
export class PeerStream {
  readonly requests = new AsyncQueue<RequestInit>();
  /** Task updates received so far (next() skips them). */
  readonly updates: schedulerv1.TaskUpdate[] = [];
  readonly #responses: AsyncIterator<schedulerv1.AnnouncePeerResponse>;

  constructor(
    client: SchedulerClient,
    readonly hostId: string,
    readonly peerId: string,
    readonly taskId: string = TASK_1,
  ) {
    this.#responses = client.announcePeer(this.requests)[Symbol.asyncIterator]();
  }

  send(body: RequestBody): void {
    this.requests.push({ hostId: this.hostId, taskId: this.taskId, peerId: this.peerId, request: body });
  }

  register(download: MessageInitShape<typeof dfdaemonv1.DownloadRequestSchema>["download"] = { url: URL_1 }, heldPieces: number[] = []): void {
    this.send({ case: "register", value: { download, heldPieces } });
  }

  /** The next answer (task updates are collected in `updates`); rejects if none comes within `ms` or the stream ends. */
  async next(ms = 5_000): Promise<schedulerv1.AnnouncePeerResponse> {
    for (;;) {
      const message = await this.nextMessage(ms);
      if (message.response.case !== "taskUpdate") return message;
      this.updates.push(message.response.value);
    }
  }

  /** The next message of any kind, task updates included. */
  async nextMessage(ms = 5_000): Promise<schedulerv1.AnnouncePeerResponse> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no response for ${this.peerId} within ${ms} ms`)), ms);
    });
    try {
      const result = await Promise.race([this.#responses.next(), timeout]);
      if (result.done === true) throw new Error(`stream of ${this.peerId} ended`);
      return result.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Digests received in task updates so far, by piece number. */
  digests(): Map<number, Buffer> {
    const out = new Map<number, Buffer>();
    for (const update of this.updates) for (const digest of update.pieceDigests) out.set(digest.number, Buffer.from(digest.sha256));
    return out;
  }

  /** Closes the request side and waits until the scheduler ended the stream. */
  async close(): Promise<void> {
    this.requests.end();
    for (;;) {
      const result = await this.#responses.next();
      if (result.done === true) return;
    }
  }

  /**
   * Registers and fills the task the way a daemon would: told to go back to
   * source, it reports the length and each piece with its digest
   * (pieceSha256); given parents, it reports each piece as fetched from the
   * first one. Then it finishes: a parent holding the whole task. Resolves
   * once the scheduler has recorded the finish (peer_finished has no answer
   * on the wire to wait for).
   */
  async finishAsParent(scheduler: SchedulerServer, contentLength = 1_000): Promise<schedulerv1.AnnouncePeerResponse> {
    this.register();
    const response = await this.next();
    const totalPieces = Math.ceil(contentLength / PIECE_LENGTH);
    const parentId = response.response.case === "normalTask" ? (response.response.value.candidateParents[0]?.peerId ?? "") : "";
    if (parentId === "") {
      this.send({ case: "backToSourceStarted", value: {} });
      this.send({ case: "taskInfo", value: { info: { contentLength: BigInt(contentLength), pieceLength: BigInt(PIECE_LENGTH), totalPieces } } });
    }
    for (let number = 0; number < totalPieces; number++) {
      const length = BigInt(Math.min(PIECE_LENGTH, contentLength - number * PIECE_LENGTH));
      this.send({ case: "pieceFinished", value: { piece: { number, length, parentId, sha256: pieceSha256(number) } } });
    }
    this.send({ case: "peerFinished", value: { contentLength: BigInt(contentLength), totalPieces } });
    await until(() => scheduler.registry.tasks.get(this.taskId)?.peers.get(this.peerId)?.state === "succeeded");
    return response;
  }
}

/**
 * Resolves once `condition` holds, checking after each turn of the event
 * loop: for one-way reports that the scheduler handles asynchronously.
 */
/**
 * Registers an afterEach that runs, last first, every cleanup the returned
 * function was given during the spec (schedulers, streams, fake daemons).
 */
export function cleanupAfterEach(): (cleanup: () => Promise<void> | void) => void {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => cleanups.push(cleanup);
}

/**
 * Two peers of one task, on hosts h1 and h2 (announced by the caller),
 * register at once: the scheduler sends the first it answers back to
 * source. Resolves with that one and the other's pending answer.
 */
export async function firstToSource(client: SchedulerClient, open: (hostId: string, peerId: string) => PeerStream) {
  const a = open("h1", "a");
  const b = open("h2", "b");
  a.register();
  b.register();
  const answers = { a: a.next(), b: b.next() };
  const [firstName, first] = await Promise.race([answers.a.then((r) => ["a", r] as const), answers.b.then((r) => ["b", r] as const)]);
  return firstName === "a" ? { first, source: a, waiting: b, waitingAnswer: answers.b } : { first, source: b, waiting: a, waitingAnswer: answers.a };
}

export async function until(condition: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error("condition not reached");
}

export function parentIdsOf(response: schedulerv1.AnnouncePeerResponse): string[] {
  if (response.response.case !== "normalTask") throw new Error(`expected normal_task, got ${response.response.case}`);
  return response.response.value.candidateParents.map((parent) => parent.peerId).sort();
}

type TriggerHandler = (request: dfdaemonv1.TriggerDownloadRequest) => Promise<MessageInitShape<typeof dfdaemonv1.TriggerDownloadResponseSchema>>;

/** A dfdaemon's peer service that only records TriggerDownload calls and answers with `handler`. */
export async function startFakeDaemon(
  handler: TriggerHandler,
  role: Role = "seed",
): Promise<{ port: number; calls: dfdaemonv1.TriggerDownloadRequest[]; close: () => Promise<void> }> {
  const calls: dfdaemonv1.TriggerDownloadRequest[] = [];
  const server = new RpcServer({ security: pki.security(role, "fake-daemon") }).add(dfdaemonv1.DfdaemonPeer, {
    async *syncPieces() {
      return;
    },
    async triggerDownload(request) {
      calls.push(request);
      return handler(request);
    },
    async deletePersistentTask() {
      return { held: false };
    },
  });
  const port = await server.listen("127.0.0.1:0");
  return { port, calls, close: () => server.close(200) };
}
