import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "@lacewing/common";
import { loadManagerConfig } from "../config.js";
import { Manager } from "../manager.js";
import { pki } from "./pki.js";

export interface ManagerUnderTest {
  manager: Manager;
  baseUrl: string;
  request(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: Record<string, unknown> }>;
  /** A request exactly as given (fetch will not send a Host of our choosing); no token unless the headers carry one. */
  raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<RawResponse>;
  /** Polls the job until `until` holds (the API has no push channel); fails after `timeoutMs`. */
  waitForJob(id: string, until: (job: JobJson) => boolean, timeoutMs?: number): Promise<JobJson>;
  close(): Promise<void>;
  /** Everything the manager logged so far (info level and up). */
  logs(): string;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface JobJson {
  id: string;
  state: string;
  progress: { done: number; total: number };
  tasks: Array<{ taskId: string; url: string; digest: string; state: string; error: string; hosts: Array<{ success: boolean }> }>;
  args: Record<string, unknown>;
  error: string;
}

export async function startManager(
  flags: Record<string, unknown>,
  options: { queueLockDurationMs?: number; hubEnv?: NodeJS.ProcessEnv } = {},
): Promise<ManagerUnderTest> {
  const config = loadManagerConfig({ flags: { listen: "127.0.0.1:0", grpcListen: "127.0.0.1:0", token: "secret-token", ...flags } });
  const sink = new PassThrough();
  const logged: Buffer[] = [];
  sink.on("data", (chunk: Buffer) => logged.push(chunk));
  const manager = new Manager(config, {
    ...options,
    security: pki.security("manager"),
    logger: createLogger({ name: "lacewing-manager", level: "info", destination: sink }),
  });
  await manager.start();
  const baseUrl = `http://127.0.0.1:${manager.restPort}`;
  const request: ManagerUnderTest["request"] = async (method, path, body, token = config.token) => {
    const headers: Record<string, string> = {};
    if (token !== null) headers["authorization"] = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await response.text();
    return { status: response.status, body: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : { text } };
  };
  const raw: ManagerUnderTest["raw"] = (method, path, headers, body) =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: "127.0.0.1", port: manager.restPort, method, path, headers, setHost: !("host" in headers) }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : { text } });
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  return {
    manager,
    baseUrl,
    request,
    raw,
    async waitForJob(id, until, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { body } = await request("GET", `/api/v1/jobs/${id}`);
        const job = body as unknown as JobJson;
        if (until(job)) return job;
        if (Date.now() > deadline) throw new Error(`job ${id} did not reach the expected state; last: ${JSON.stringify(job)}`);
        await sleep(50);
      }
    },
    close: () => manager.close(),
    logs: () => Buffer.concat(logged).toString("utf8"),
  };
}

export const isFinished = (job: JobJson): boolean => ["succeeded", "failed", "cancelled"].includes(job.state);
