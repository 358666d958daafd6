import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { tlsArgs } from "./pki.js";
import { BIN, portOf, startProcess, type LacewingProcess } from "./processes.js";

/** A job as `GET /api/v1/jobs/:id` returns it (the fields tests read). */
export interface JobJson {
  id: string;
  state: string;
  error: string;
  progress: { done: number; total: number };
  args: Record<string, unknown>;
  tasks: Array<{
    taskId: string;
    url: string;
    digest: string;
    state: string;
    error: string;
    scheduler: string;
    hosts: Array<{ hostId: string; hostname: string; success: boolean; description: string }>;
  }>;
}

export interface ManagerProcess extends LacewingProcess {
  /** http://127.0.0.1:PORT of the REST API. */
  url: string;
  grpcAddress: string;
  token: string;
  /** A JSON call with the bearer token; the body is parsed when it is JSON. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Polls the job until it leaves pending/running; fails after `timeoutMs`. */
  waitForJob(id: string, timeoutMs?: number): Promise<JobJson>;
}

/** Starts `lacewing-manager` on loopback port 0 (REST and gRPC) and resolves once both listen. */
export async function startManagerProcess(extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ManagerProcess> {
  const token = "e2e-manager-token";
  const process = await startProcess(
    BIN.manager,
    ["--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--token", token, ...(await tlsArgs("manager")), ...extra],
    "manager started",
    env,
  );
  const url = `http://127.0.0.1:${portOf(process.started, "rest")}`;
  const grpcAddress = `127.0.0.1:${portOf(process.started, "grpc")}`;
  const request: ManagerProcess["request"] = async (method, path, body) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await response.text();
    return { status: response.status, body: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : { text } };
  };
  return {
    ...process,
    url,
    grpcAddress,
    token,
    request,
    async waitForJob(id, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { status, body } = await request("GET", `/api/v1/jobs/${id}`);
        if (status !== 200) throw new Error(`GET job ${id}: ${status} ${JSON.stringify(body)}`);
        const job = body as unknown as JobJson;
        if (job.state !== "pending" && job.state !== "running") return job;
        if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state} after ${timeoutMs} ms: ${JSON.stringify(job)}`);
        await sleep(200);
      }
    },
  };
}

/** Whether something accepts TCP connections on 127.0.0.1:port (Postgres, Redis). */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}
