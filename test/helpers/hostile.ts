import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { schedulerv1 } from "@lacewing/api";
import { HostType, RpcServer, dfdaemonv1, type MessageInitShape, type RpcClient } from "@lacewing/api";
import { AsyncQueue, type Role } from "@lacewing/common";
import { pieceFrames } from "@lacewing/dfdaemon";
import { pki, schedulerClient } from "./pki.js";

/**
 * Hostile actors for the tests under test/e2e/hostile: cluster members
 * that lie (they hold a real certificate, as a compromised node would) and
 * strangers (no certificate at all).
 */

type SyncResponse = MessageInitShape<typeof dfdaemonv1.SyncPiecesResponseSchema>;
type AnnounceRequest = MessageInitShape<typeof schedulerv1.AnnouncePeerRequestSchema>;

export interface FakeParentScript {
  /** What the parent says on SyncPieces; the grant is sent first unless `grant` is false. */
  sync: (request: dfdaemonv1.SyncPiecesRequest) => SyncResponse[];
  /** The bytes it serves for a piece (undefined: "not found"); whatever they are, of whatever length. */
  serve: (taskId: string, number: number) => Buffer | undefined;
  grant?: boolean;
}

/**
 * A lying parent: a peer certificate, a DfdaemonPeer server and a download
 * port, both scripted by the test, announced to the scheduler as a normal
 * host. It counts what children asked of it.
 */
export class FakeParent {
  readonly name: string;
  readonly hostId: string;
  syncCalls = 0;
  uploadRequests = 0;
  triggerCalls = 0;
  readonly #rpc: RpcServer;
  readonly #download: Server;
  readonly #sockets = new Set<Socket>();
  readonly #scheduler: RpcClient<typeof schedulerv1.Scheduler>;
  #peerPort = 0;
  readonly #streams: Array<AsyncQueue<AnnounceRequest>> = [];

  private constructor(name: string, scheduler: string, script: FakeParentScript, role: Role) {
    this.name = name;
    this.hostId = `${name}-host`;
    this.#scheduler = schedulerClient(scheduler, role, name);
    this.#rpc = new RpcServer({ security: pki.security(role, name) }).add(dfdaemonv1.DfdaemonPeer, {
      syncPieces: (request) => {
        this.syncCalls++;
        const messages: SyncResponse[] = script.grant === false ? [] : [{ response: { case: "grant", value: { token: "fake-token" } } }];
        messages.push(...script.sync(request));
        return (async function* () {
          yield* messages;
          // Then stay open, as a parent still downloading would.
          await new Promise(() => undefined);
        })();
      },
      triggerDownload: async () => {
        this.triggerCalls++;
        return { taskId: "", finished: false, description: "accepted" };
      },
      deletePersistentTask: async () => {
        return { held: false };
      },
    });
    // The download port speaks the piece protocol, answering each request with whatever the script says.
    this.#download = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => undefined);
      pieceFrames.readChildFrames(socket, (type, payload) => {
        if (type !== pieceFrames.FrameType.request) return;
        this.uploadRequests++;
        const request = pieceFrames.decodeRequest(payload);
        const body = script.serve(request.taskId, request.number);
        if (body === undefined)
          socket.write(pieceFrames.encodeRefused({ id: request.id, reason: pieceFrames.Refusal.notFound, retryAfterMs: 0, message: "not held" }));
        else socket.write(Buffer.concat([pieceFrames.encodePieceHeader(request.id, body.byteLength), body]));
      });
    });
  }

  /** Starts the parent's servers and announces its host to `scheduler`. */
  static async start(name: string, scheduler: string, script: FakeParentScript, role: Role = "peer"): Promise<FakeParent> {
    const parent = new FakeParent(name, scheduler, script, role);
    parent.#peerPort = await parent.#rpc.listen("127.0.0.1:0");
    await new Promise<void>((resolve) => parent.#download.listen(0, "127.0.0.1", resolve));
    await parent.announce();
    return parent;
  }

  get downloadPort(): number {
    return (this.#download.address() as AddressInfo).port;
  }

  /** (Re-)announces the host, as a normal host or as whatever `type` says. */
  announce(type: HostType = HostType.NORMAL, hostId = this.hostId): Promise<schedulerv1.AnnounceHostResponse> {
    return this.#scheduler.announceHost({
      host: {
        id: hostId,
        ip: "127.0.0.1",
        hostname: this.name,
        port: this.#peerPort,
        downloadPort: this.downloadPort,
        type,
        concurrentUploadLimit: 32,
        announceIntervalSeconds: 60,
      },
    });
  }

  /**
   * Registers as holding the whole task `taskId` with these digests (so it
   * is handed out as a finished parent) and resolves with the answer.
   */
  async registerComplete(
    taskId: string,
    info: { contentLength: number; pieceLength: number },
    digests: Buffer[],
    url = "http://unused.example/x",
  ): Promise<schedulerv1.AnnouncePeerResponse["response"] | undefined> {
    const requests = new AsyncQueue<AnnounceRequest>();
    this.#streams.push(requests);
    const responses = this.#scheduler.announcePeer(requests)[Symbol.asyncIterator]();
    requests.push({
      hostId: this.hostId,
      taskId,
      peerId: `${this.name}-peer-${this.#streams.length}`,
      request: {
        case: "register",
        value: {
          download: { url },
          complete: true,
          taskInfo: {
            taskId,
            contentLength: BigInt(info.contentLength),
            pieceLength: BigInt(info.pieceLength),
            totalPieces: Math.ceil(info.contentLength / info.pieceLength),
          },
          pieceSha256: digests,
        },
      },
    });
    const first = await responses.next();
    return first.done === true ? undefined : first.value.response;
  }

  get scheduler(): RpcClient<typeof schedulerv1.Scheduler> {
    return this.#scheduler;
  }

  async close(): Promise<void> {
    for (const stream of this.#streams) stream.end();
    this.#scheduler.close();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#download.close(() => resolve()));
    await this.#rpc.close(200);
  }
}

/** Which processes are no longer running; an attack must not have killed any. */
export function deadProcesses(processes: ReadonlyArray<{ name?: string; child: { exitCode: number | null; signalCode: NodeJS.Signals | null } }>): string[] {
  return processes.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null).map((p, i) => p.name ?? `process ${i}`);
}
