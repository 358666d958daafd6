import { EventEmitter } from "node:events";
import { HostType, RpcServer, schedulerv1, type MessageInitShape } from "@lacewing/api";
import { ErrorCode, LacewingError, taskIdOf } from "@lacewing/common";
import { pki } from "./pki.js";

type TriggerResponse = MessageInitShape<typeof schedulerv1.TriggerDownloadResponseSchema>;

export interface RecordedTrigger {
  request: schedulerv1.TriggerDownloadRequest;
  taskId: string;
}

/**
 * A scheduler that records TriggerDownload calls. `respond` decides each
 * answer (default: one seed peer succeeded); it can hold a call open to test
 * restarts. Emits "trigger" with each RecordedTrigger as it arrives.
 */
export class FakeScheduler extends EventEmitter {
  readonly triggers: RecordedTrigger[] = [];
  respond: (call: RecordedTrigger, signal: AbortSignal) => Promise<TriggerResponse> = (call) => Promise.resolve(succeeded(call.taskId));
  /** What ListTasks answers (one page). */
  tasks: MessageInitShape<typeof schedulerv1.ListTasksResponseSchema> = { tasks: [] };
  /** What GetTaskFlow answers, by task id; NOT_FOUND for others. */
  readonly flows = new Map<string, MessageInitShape<typeof schedulerv1.GetTaskFlowResponseSchema>>();
  readonly #server = new RpcServer({ security: pki.security("scheduler") });
  #address = "";

  get address(): string {
    return this.#address;
  }

  async start(): Promise<string> {
    const unimplemented = (): never => {
      throw new LacewingError(ErrorCode.unimplemented, "failed_precondition", "not implemented by the fake scheduler");
    };
    this.#server.add(schedulerv1.Scheduler, {
      announceHost: () => Promise.resolve(unimplemented()),

      announcePeer: async function* () {
        unimplemented();
      },
      statTask: () => Promise.resolve(unimplemented()),
      deletePeer: () => Promise.resolve(unimplemented()),
      deleteTask: () => Promise.resolve(unimplemented()),
      deleteHost: () => Promise.resolve(unimplemented()),
      deletePersistentTask: () => Promise.resolve(unimplemented()),
      listTasks: () => Promise.resolve(this.tasks),
      getTaskFlow: (request) => {
        const flow = this.flows.get(request.taskId);
        if (flow === undefined) throw new LacewingError(ErrorCode.taskNotFound, "not_found", "no flow for this task");
        return Promise.resolve(flow);
      },
      triggerDownload: (request, ctx) => {
        const download = request.download;
        const call = {
          request,
          taskId: taskIdOf({
            url: download?.url ?? "",
            tag: download?.tag ?? "",
            application: download?.application ?? "",
            filteredQueryParams: download?.filteredQueryParams ?? [],
            sourceVersion: download?.sourceVersion ?? "",
          }),
        };
        this.triggers.push(call);
        this.emit("trigger", call);
        return this.respond(call, ctx.signal);
      },
      // One host per page, as a scheduler with thousands of hosts answers: the manager has to follow the pages.
      listHosts: (request) => {
        const hosts = [
          {
            host: { id: "seed-1", hostname: "seed-1", ip: "10.0.0.1", type: HostType.SEED, port: 4000, downloadPort: 4001 },
            lastAnnouncedAtMs: BigInt(Date.now()),
            peerCount: 2,
          },
          {
            host: { id: "node-1", hostname: "node-1", ip: "10.0.0.2", type: HostType.NORMAL, port: 4000, downloadPort: 4001 },
            lastAnnouncedAtMs: BigInt(Date.now()),
            peerCount: 1,
          },
        ];
        const at = request.pageToken === "" ? 0 : Number(request.pageToken);
        return Promise.resolve({
          schedulerAddress: this.#address,
          hosts: hosts.slice(at, at + 1),
          nextPageToken: at + 1 < hosts.length ? String(at + 1) : "",
        });
      },
    });
    const port = await this.#server.listen("127.0.0.1:0");
    this.#address = `127.0.0.1:${port}`;
    return this.#address;
  }

  close(): Promise<void> {
    return this.#server.close(200);
  }
}

export function succeeded(taskId: string): TriggerResponse {
  return { taskId, results: [{ hostId: "seed-1", hostname: "seed-1", ip: "10.0.0.1", success: true }] };
}

export function failed(taskId: string, description: string): TriggerResponse {
  return { taskId, results: [{ hostId: "seed-1", hostname: "seed-1", ip: "10.0.0.1", success: false, description }] };
}
