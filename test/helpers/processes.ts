import { access, rm } from "node:fs/promises";
import { exec, startBinary, type CommandResult, type RunningProcess } from "./commands.js";
import { createServer } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { tlsArgs } from "./pki.js";

/** Repository root, from test/dist/helpers. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export const BIN = {
  dfdaemon: join(ROOT, "packages/dfdaemon/bin/dfdaemon.js"),
  dfget: join(ROOT, "packages/dfget/bin/dfget.js"),
  scheduler: join(ROOT, "packages/scheduler/bin/lacewing-scheduler.js"),
  manager: join(ROOT, "packages/manager/bin/lacewing-manager.js"),
};

export type { CommandResult, RunningProcess } from "./commands.js";

/** Starts one of our Node binaries (BIN.*) with this Node, collecting its output. */
export function startProcess(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): RunningProcess {
  return startBinary(process.execPath, [bin, ...args], { env });
}

/** Ports free on 127.0.0.1 right now (the kernel picks them; a race with other binders is unlikely). */
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

export interface DaemonOptions {
  /** Let it fetch from loopback origins, as every test origin is (default true). */
  loopbackOrigins?: boolean;
}

/**
 * Starts a dfdaemon on free ports, with a certificate of the test's cluster
 * CA (a seed's with --seed, a peer's otherwise, named after its directory),
 * and waits until all its listeners are up (/readyz). Ports are picked free
 * and then bound by the daemon, so another test can take one in between:
 * a daemon that exits with EADDRINUSE is started again on fresh ports.
 */
export async function startDaemon(
  dir: string,
  extra: string[] = [],
  options: DaemonOptions = {},
): Promise<RunningProcess & { socket: string; ports: DaemonPorts }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startDaemonOnce(dir, extra, options);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE|address already in use/.test(String(err))) throw err;
    }
  }
}

async function startDaemonOnce(dir: string, extra: string[], options: DaemonOptions): Promise<RunningProcess & { socket: string; ports: DaemonPorts }> {
  const socket = join(dir, "dfdaemon.sock");
  const [peer, upload, proxy, metrics] = (await freePorts(4)) as [number, number, number, number];
  const ports = { peer, upload, proxy, metrics };
  // A socket left by a daemon killed with SIGKILL would look like this one being up already.
  await rm(socket, { force: true });
  const daemon = startProcess(BIN.dfdaemon, [
    "--peer-port",
    String(peer),
    "--upload-port",
    String(upload),
    "--proxy-port",
    String(proxy),
    "--metrics-port",
    String(metrics),
    "--listen-ip",
    "127.0.0.1",
    "--data-dir",
    join(dir, "data"),
    "--socket",
    socket,
    "--advertise-ip",
    "127.0.0.1",
    "--log-level",
    "warn",
    ...(await tlsArgs(extra.includes("--seed") ? "seed" : "peer", basename(dir).replace(/[^A-Za-z0-9._-]/g, "-"))),
    ...(options.loopbackOrigins === false ? [] : ["--allow-loopback-origins"]),
    ...extra,
  ]);
  // A test that moves the metrics port itself is waited for by its socket only.
  const probe = extra.includes("--metrics-port") ? undefined : `http://127.0.0.1:${metrics}/readyz`;
  for (let i = 0; i < 300; i++) {
    if (daemon.child.exitCode !== null) throw new Error(`dfdaemon exited: ${daemon.output()}`);
    const up = await access(socket).then(
      () => true,
      () => false,
    );
    const ready =
      up &&
      (probe === undefined ||
        (await fetch(probe).then(
          (response) => response.status === 200,
          () => false,
        )));
    if (ready) return { ...daemon, socket, ports };
    await sleep(50);
  }
  await daemon.stop();
  throw new Error(`dfdaemon did not become ready: ${daemon.output()}`);
}

/** Runs one of our Node binaries to completion; never rejects for a non-zero exit. */
export function runCommand(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return exec(process.execPath, [bin, ...args], { env });
}
