// Processes inside testbed hosts: `ip netns exec NS …`, spawned
// asynchronously, output to a log file per process. `ip netns exec` execs
// the command in place, so the child's pid is the process itself and a
// signal reaches it directly.
import { spawn, type ChildProcess } from "node:child_process";
import { access, mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULTS } from "@lacewing/common";
import { BIN } from "../helpers/processes.js";
import { runTool, type ToolResult } from "./command.js";
import type { Host } from "./netns.js";
import { tlsDir } from "../helpers/pki.js";

export interface HostProcess {
  host: Host;
  /** Label used in errors and the log file name. */
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Last lines of the process's log, for error messages. */
  tail(): Promise<string>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** User + system CPU seconds the process has used so far; 0 once it has exited. */
  cpuSeconds(): Promise<number>;
}

/** Clock ticks per second in /proc: USER_HZ, 100 on every Linux architecture Node runs on. */
const USER_HZ = 100;

/** User + system CPU seconds process `pid` has used so far; 0 when it is gone. */
export async function procCpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / USER_HZ;
}

/** Busy and total CPU time of the whole machine so far (all cores, seconds), from /proc/stat. */
export async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const ticks = line.split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: (total - idle) / USER_HZ, total: total / USER_HZ };
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Starts `command args` inside `host`, logging stdout and stderr to `logDir/name.log`. */
export async function startInHost(host: Host, name: string, command: string, args: readonly string[], logDir: string): Promise<HostProcess> {
  await mkdir(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const log = await open(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn("ip", ["netns", "exec", host.ns, command, ...args], { stdio: ["ignore", log.fd, log.fd] });
  } finally {
    await log.close();
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(null));
  });
  const tail = async (): Promise<string> => {
    const text = await readFile(logFile, "utf8").catch(() => "");
    return text.split("\n").slice(-20).join("\n");
  };
  return {
    host,
    name,
    child,
    logFile,
    exited,
    tail,
    cpuSeconds: () => procCpuSeconds(child.pid),
    stop: async (graceMs = 5_000) => {
      if (!isRunning(child)) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => isRunning(child) && child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Runs `command args` inside `host` to completion and returns the CPU
 * seconds it used: a shell runs it and, once it has waited for it, writes
 * its own /proc stat, whose cutime and cstime are the child's.
 */
export async function childCpuSeconds(
  host: Host,
  command: string,
  args: readonly string[],
  statFile: string,
): Promise<{ result: ToolResult; cpuSeconds: number }> {
  const script = `"$@"; rc=$?; cat /proc/$$/stat > ${JSON.stringify(statFile)}; exit $rc`;
  const result = await runInHost(host, "sh", ["-c", script, "sh", command, ...args]);
  const stat = await readFile(statFile, "utf8").catch(() => "");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { result, cpuSeconds: (Number(fields[13] ?? 0) + Number(fields[14] ?? 0)) / USER_HZ };
}

/** Runs `command args` inside `host` to completion. */
export function runInHost(host: Host, command: string, args: readonly string[]): Promise<ToolResult> {
  return runTool("ip", ["netns", "exec", host.ns, command, ...args]);
}

/** GETs `url` with curl from inside `host`; undefined when it fails. */
export async function curlFrom(host: Host, url: string): Promise<string | undefined> {
  const result = await runInHost(host, "curl", ["-sf", "--max-time", "2", url]);
  return result.code === 0 ? result.stdout : undefined;
}

/** Polls `ready` until it returns true; fails early if `process` exits. */
async function waitUntil(process: HostProcess, what: string, ready: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(process.child)) throw new Error(`${process.name} on ${process.host.name} exited before ${what}:\n${await process.tail()}`);
    if (await ready()) return;
    await sleep(50);
  }
  await process.stop();
  throw new Error(`${process.name} on ${process.host.name}: no ${what} after ${timeoutMs} ms:\n${await process.tail()}`);
}

export interface SchedulerProcess extends HostProcess {
  /** HOST:PORT for dfdaemon --scheduler. */
  address: string;
  /** Hosts the scheduler knows, by type; undefined if /metrics did not answer. */
  hosts(): Promise<{ seed: number; normal: number } | undefined>;
}

export async function startScheduler(host: Host, logDir: string, extraArgs: readonly string[] = []): Promise<SchedulerProcess> {
  const address = `${host.ip}:${DEFAULTS.scheduler.port}`;
  const metricsUrl = `http://${host.ip}:${DEFAULTS.scheduler.metricsPort}`;
  const args = [BIN.scheduler, "--listen", address, "--log-level", "warn", "--tls-dir", await tlsDir("scheduler", host.name), ...extraArgs];
  const proc = await startInHost(host, "scheduler", process.execPath, args, logDir);
  await waitUntil(proc, "/readyz", async () => (await curlFrom(host, `${metricsUrl}/readyz`)) !== undefined);
  return {
    ...proc,
    address,
    hosts: async () => {
      const text = await curlFrom(host, `${metricsUrl}/metrics`);
      if (text === undefined) return undefined;
      const gauge = (type: string): number => Number(new RegExp(`^lacewing_scheduler_hosts\\{type="${type}"\\} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
      return { seed: gauge("seed"), normal: gauge("normal") };
    },
  };
}

export interface DfdaemonProcess extends HostProcess {
  socket: string;
  /** Piece bytes this daemon served to other peers (its /metrics); undefined if /metrics did not answer. */
  uploadBytes(): Promise<number | undefined>;
  /** Verified bytes in its cache and bytes served to peers so far (its /metrics); undefined if /metrics did not answer. */
  progress(): Promise<{ cached: number; uploaded: number } | undefined>;
  /** Its counters of piece requests: served by result, and failed by reason (its /metrics). */
  pieceCounters(): Promise<Record<string, number>>;
}

export interface DfdaemonOptions {
  /** Scheduler HOST:PORT; without it the daemon goes straight to the origin. */
  scheduler?: string;
  seed?: boolean;
  extraArgs?: readonly string[];
}

/** Starts a dfdaemon on `host` with its data and socket under `dir`, on the default ports (each host has its own). */
export async function startDfdaemon(host: Host, dir: string, options: DfdaemonOptions = {}): Promise<DfdaemonProcess> {
  const socket = join(dir, "dfdaemon.sock");
  const args = [BIN.dfdaemon, "--data-dir", join(dir, "data"), "--socket", socket, "--listen-ip", host.ip, "--advertise-ip", host.ip, "--log-level", "warn"];
  if (options.scheduler !== undefined) args.push("--scheduler", options.scheduler);
  if (options.seed === true) args.push("--seed");
  args.push("--tls-dir", await tlsDir(options.seed === true ? "seed" : "peer", host.name));
  args.push(...(options.extraArgs ?? []));
  const proc = await startInHost(host, options.seed === true ? "seed-dfdaemon" : "dfdaemon", process.execPath, args, dir);
  await waitUntil(proc, "socket", () =>
    access(socket).then(
      () => true,
      () => false,
    ),
  );
  const metricsUrl = `http://${host.ip}:${DEFAULTS.dfdaemon.metricsPort}/metrics`;
  const sample = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
  const progress = async (): Promise<{ cached: number; uploaded: number } | undefined> => {
    const text = await curlFrom(host, metricsUrl);
    if (text === undefined) return undefined;
    return { cached: sample(text, "lacewing_dfdaemon_cache_bytes"), uploaded: sample(text, "lacewing_dfdaemon_upload_bytes_total") };
  };
  const pieceCounters = async (): Promise<Record<string, number>> => {
    const text = (await curlFrom(host, metricsUrl)) ?? "";
    const counters: Record<string, number> = {};
    for (const match of text.matchAll(/^lacewing_dfdaemon_(upload_pieces_total\{result|piece_failures_total\{reason)="([a-z_]+)"\} (\S+)$/gm))
      counters[`${match[1]!.startsWith("upload") ? "served" : "failed"} ${match[2]}`] = Number(match[3]);
    return counters;
  };
  return { ...proc, socket, progress, pieceCounters, uploadBytes: async () => (await progress())?.uploaded };
}

export interface OriginTraffic {
  /** Response body bytes nginx sent (`$body_bytes_sent`, which counts a response cut short up to where it stopped). */
  bytes: number;
  requests: number;
  /** Body bytes by client address. */
  bytesByClient: Record<string, number>;
}

/** nginx serving a directory from a testbed host, with an access log that records the body bytes of each response. */
export class NginxOrigin {
  readonly host: Host;
  readonly #dir: string;
  #process: HostProcess | undefined;

  constructor(host: Host, dir: string) {
    this.host = host;
    this.#dir = dir;
  }

  get root(): string {
    return join(this.#dir, "www");
  }

  get accessLog(): string {
    return join(this.#dir, "access.log");
  }

  url(path: string): string {
    return `http://${this.host.ip}${path}`;
  }

  async start(): Promise<void> {
    const dir = this.#dir;
    await mkdir(this.root, { recursive: true });
    await mkdir(join(dir, "tmp"), { recursive: true });
    const config = `# generated by the Lacewing testbed
daemon off;
master_process on;
worker_processes 1;
user root;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 1024; }
http {
  log_format lacewing '$remote_addr $status $body_bytes_sent "$request" "$http_range"';
  access_log ${this.accessLog} lacewing;
  client_body_temp_path ${join(dir, "tmp")};
  proxy_temp_path ${join(dir, "tmp")};
  fastcgi_temp_path ${join(dir, "tmp")};
  uwsgi_temp_path ${join(dir, "tmp")};
  scgi_temp_path ${join(dir, "tmp")};
  sendfile on;
  keepalive_requests 10000;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  server {
    listen ${this.host.ip}:80;
    root ${this.root};
    location = /healthz { access_log off; return 200 "ok\\n"; }
  }
}
`;
    await writeFile(join(dir, "nginx.conf"), config);
    await writeFile(this.accessLog, "");
    const proc = await startInHost(this.host, "nginx", "nginx", ["-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")], dir);
    this.#process = proc;
    await waitUntil(proc, "/healthz", async () => (await curlFrom(this.host, this.url("/healthz"))) !== undefined);
  }

  /** Current end of the access log; pass it to `trafficSince` to count one scenario's requests. */
  async mark(): Promise<number> {
    return (await readFile(this.accessLog)).byteLength;
  }

  async trafficSince(mark: number): Promise<OriginTraffic> {
    const text = (await readFile(this.accessLog)).subarray(mark).toString("utf8");
    const traffic: OriginTraffic = { bytes: 0, requests: 0, bytesByClient: {} };
    for (const line of text.split("\n")) {
      const [client, , bytes] = line.split(" ");
      if (client === undefined || bytes === undefined) continue;
      const n = Number(bytes);
      traffic.bytes += n;
      traffic.requests++;
      traffic.bytesByClient[client] = (traffic.bytesByClient[client] ?? 0) + n;
    }
    return traffic;
  }

  async close(): Promise<void> {
    await this.#process?.stop();
  }
}
