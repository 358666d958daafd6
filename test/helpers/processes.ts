import { exec, startBinary, type CommandResult, type RunningProcess } from "./commands.js";
import { createServer } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { tlsArgs } from "./pki.js";

/** Repository root, from test/dist/helpers. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export const BIN = {
  dfdaemon: join(ROOT, "packages/dfdaemon/bin/dfdaemon.js"),
  dfget: join(ROOT, "packages/dfget/bin/dfget.js"),
  dfcache: join(ROOT, "packages/dfget/bin/dfcache.js"),
  scheduler: join(ROOT, "packages/scheduler/bin/lacewing-scheduler.js"),
  manager: join(ROOT, "packages/manager/bin/lacewing-manager.js"),
};

export type { CommandResult, RunningProcess } from "./commands.js";

/** Extra Node flags for the processes tests start, for profiling runs: LACEWING_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
function nodeArgs(): string[] {
  return (process.env["LACEWING_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
}

/** pino's levels, as its JSON lines number them. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** The last value of `flag` in `args` (a later flag overrides an earlier one). */
function lastFlag(args: readonly string[], flag: string): string | undefined {
  const at = args.lastIndexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
}

/** A `keep` for startBinary: pino JSON lines at `level` and above, and every line that is not one. */
export function logsFrom(level: string): (line: string) => boolean {
  const least = LEVELS[level] ?? LEVELS["warn"]!;
  return (line) => {
    const match = /^\{"level":(\d+)/.exec(line);
    return match === null || Number(match[1]) >= least;
  };
}

/** The fields of a start line ("dfdaemon started", …), as JSON. */
export type StartLine = Record<string, unknown>;

export interface LacewingProcess extends RunningProcess {
  /** The line it logged once every listener was up: the ports it actually bound. */
  started: StartLine;
}

/**
 * Starts one of our Node binaries (BIN.*) and resolves, once it has logged
 * `message` (the line each logs when all its listeners are up), with that
 * line's fields. The helpers start every process on port 0 and take the
 * ports from this line, so no test running alongside can take a port
 * between its being picked and bound.
 *
 * The line is logged at info, so the process runs at info unless the test
 * asks for a lower level with its own --log-level. output() still shows only
 * warn and above unless the test asked for a level, so failure messages are
 * what they were when the helpers ran everything at warn; the info lines in
 * between are a handful per download (host joined, task finished), never
 * one per piece.
 */
export async function startProcess(bin: string, args: string[], message: string, env: NodeJS.ProcessEnv = {}): Promise<LacewingProcess> {
  const asked = lastFlag(args, "--log-level");
  if (asked !== undefined && !(LEVELS[asked]! <= LEVELS["info"]!))
    throw new Error(`${basename(bin)} --log-level ${asked}: the helpers read its start line, which is logged at info`);
  const child = startBinary(process.execPath, [...nodeArgs(), bin, "--log-level", "info", ...args], { env, keep: logsFrom(asked ?? "warn") });
  try {
    const [line] = await child.waitForLines(new RegExp(`^\\{.*"msg":${JSON.stringify(message)}`));
    return { ...child, started: JSON.parse(line!) as StartLine };
  } catch (err) {
    await child.stop("SIGKILL");
    throw err;
  }
}

/** A port its start line reports under `field`, as a number or at the end of a `host:port`. */
export function portOf(started: StartLine, field: string): number {
  const value = started[field];
  const port = typeof value === "string" ? Number(value.slice(value.lastIndexOf(":") + 1)) : value;
  if (typeof port !== "number" || !Number.isInteger(port) || port <= 0 || port > 65_535)
    throw new Error(`the start line has no port in ${field}: ${JSON.stringify(started)}`);
  return port;
}

/**
 * Ports free on 127.0.0.1 right now, for the few tests that must know a port
 * before its process exists (daemons started before their scheduler, an
 * address where nothing listens). Another test may bind one before the
 * process does; everything else starts on port 0 (startProcess).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolveServer, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolveServer(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((r) => server.close(r))));
  return ports;
}

export interface DaemonPorts {
  peer: number;
  upload: number;
  proxy: number;
  metrics: number;
}

/** The ports a dfdaemon's "dfdaemon started" line reports. */
export function daemonPortsOf(started: StartLine): DaemonPorts {
  return {
    peer: portOf(started, "peerPort"),
    upload: portOf(started, "uploadPort"),
    proxy: portOf(started, "proxyPort"),
    metrics: portOf(started, "metricsPort"),
  };
}

export interface DaemonOptions {
  /** Let it fetch from loopback origins, as every test origin is (default true). */
  loopbackOrigins?: boolean;
  /** More environment for the daemon (its own AWS_* for s3://, say). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a dfdaemon on port 0 throughout, with a certificate of the test's
 * cluster CA (a seed's with --seed, a peer's otherwise, named after its
 * directory), and resolves once all its listeners are up with the ports it
 * bound.
 */
export async function startDaemon(
  dir: string,
  extra: string[] = [],
  options: DaemonOptions = {},
): Promise<LacewingProcess & { socket: string; ports: DaemonPorts }> {
  const daemon = await startProcess(
    BIN.dfdaemon,
    [
      ...["--peer-port", "0", "--upload-port", "0", "--proxy-port", "0", "--metrics-port", "0"],
      ...["--listen-ip", "127.0.0.1", "--advertise-ip", "127.0.0.1"],
      ...["--data-dir", join(dir, "data"), "--socket", join(dir, "dfdaemon.sock")],
      ...(await tlsArgs(extra.includes("--seed") ? "seed" : "peer", basename(dir).replace(/[^A-Za-z0-9._-]/g, "-"))),
      ...(options.loopbackOrigins === false ? [] : ["--allow-loopback-origins"]),
      ...extra,
    ],
    "dfdaemon started",
    options.env,
  );
  return { ...daemon, socket: String(daemon.started["socket"]), ports: daemonPortsOf(daemon.started) };
}

/** Runs one of our Node binaries to completion; never rejects for a non-zero exit. */
export function runCommand(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return exec(process.execPath, [bin, ...args], { env });
}
