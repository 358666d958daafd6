import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { schedulerClient, tlsArgs } from "./pki.js";
import { BIN, freePorts, runCommand, startDaemon, startProcess, type CommandResult, type DaemonOptions, type RunningProcess } from "./processes.js";

export type Daemon = Awaited<ReturnType<typeof startDaemon>> & { name: string; dir: string };

export interface SchedulerProcess extends RunningProcess {
  address: string;
  metricsPort: number;
}

/** Starts lacewing-scheduler on free loopback ports. */
export async function startScheduler(extra: string[] = [], ports?: { port: number; metricsPort: number }): Promise<SchedulerProcess> {
  const [port, metricsPort] = ports ? [ports.port, ports.metricsPort] : ((await freePorts(2)) as [number, number]);
  const address = `127.0.0.1:${port}`;
  const process = startProcess(BIN.scheduler, [
    "--listen",
    address,
    "--metrics-port",
    String(metricsPort),
    "--log-level",
    "warn",
    ...(await tlsArgs("scheduler")),
    ...extra,
  ]);
  const client = schedulerClient(address);
  try {
    for (let i = 0; ; i++) {
      if (process.child.exitCode !== null) throw new Error(`scheduler exited: ${process.output()}`);
      try {
        await client.listHosts({}, { timeoutMs: 500 });
        break;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(100);
      }
    }
  } finally {
    client.close();
  }
  return { ...process, address, metricsPort };
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
