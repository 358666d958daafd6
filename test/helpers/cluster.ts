import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TestOrigin } from "./origin.js";
import { schedulerClient, tlsArgs } from "./pki.js";
import { BIN, portOf, runCommand, startDaemon, startProcess, type CommandResult, type DaemonOptions, type LacewingProcess } from "./processes.js";

export type Daemon = Awaited<ReturnType<typeof startDaemon>> & { name: string; dir: string };

export interface SchedulerProcess extends LacewingProcess {
  address: string;
  metricsPort: number;
}

export interface SchedulerOptions {
  /** Listen on this port rather than on any: a test that restarts a scheduler on the address its daemons already use. */
  port?: number;
}

/** Starts lacewing-scheduler on loopback, on port 0 unless told otherwise, and resolves once it listens. */
export async function startScheduler(extra: string[] = [], options: SchedulerOptions = {}): Promise<SchedulerProcess> {
  const scheduler = await startProcess(
    BIN.scheduler,
    ["--listen", `127.0.0.1:${options.port ?? 0}`, "--metrics-port", "0", ...(await tlsArgs("scheduler")), ...extra],
    "scheduler started",
  );
  return { ...scheduler, address: `127.0.0.1:${portOf(scheduler.started, "address")}`, metricsPort: portOf(scheduler.started, "metricsPort") };
}

/** Hosts the scheduler knows right now. */
export async function knownHosts(address: string): Promise<number> {
  const client = schedulerClient(address);
  try {
    return (await client.listHosts({}, { timeoutMs: 2_000 })).hosts.length;
  } finally {
    client.close();
  }
}

/** Waits until the scheduler knows `count` hosts. */
export async function waitForHosts(address: string, count: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const known = await knownHosts(address).catch(() => 0);
    if (known >= count) return;
    if (Date.now() > deadline) throw new Error(`scheduler knows ${known} hosts, expected ${count}`);
    await sleep(100);
  }
}

/** Starts a named dfdaemon under `root/name` talking to `scheduler`. */
export async function startPeer(root: string, name: string, scheduler: string, extra: string[] = [], options: DaemonOptions = {}): Promise<Daemon> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const daemon = await startDaemon(dir, ["--scheduler", scheduler, "--announce-interval", "2s", ...extra], options);
  return { ...daemon, name, dir };
}

export function dfget(daemon: Daemon, url: string, out: string, ...extra: string[]): Promise<CommandResult> {
  return runCommand(BIN.dfget, [url, "-O", out, "--socket", daemon.socket, "--no-progress", "--json", ...extra]);
}

/** One Prometheus sample value from a daemon's or scheduler's /metrics (summed over matching label sets). */
export async function metricValue(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (ok) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** One daemon without a scheduler, under a fresh temporary directory, in front of a TestOrigin serving `files`. */
export interface SingleNode {
  dir: string;
  origin: TestOrigin;
  daemon: Awaited<ReturnType<typeof startDaemon>>;
}

export async function startSingleNode(prefix: string, files: Record<string, Buffer>, daemonArgs: string[] = []): Promise<SingleNode> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const origin = new TestOrigin(files);
  await origin.start();
  return { dir, origin, daemon: await startDaemon(dir, daemonArgs) };
}

/** Stops what startSingleNode started (any part of it that did start) and removes its directory. */
export async function stopSingleNode(node: Partial<SingleNode>): Promise<void> {
  await node.daemon?.stop();
  await node.origin?.close();
  if (node.dir !== undefined) await rm(node.dir, { recursive: true, force: true });
}
