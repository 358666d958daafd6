import { spawn, type ChildProcess } from "node:child_process";
import { access } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

/** Repository root, from test/dist/helpers. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export const BIN = {
  dfdaemon: join(ROOT, "packages/dfdaemon/bin/dfdaemon.js"),
  dfget: join(ROOT, "packages/dfget/bin/dfget.js"),
  scheduler: join(ROOT, "packages/scheduler/bin/lacewing-scheduler.js"),
  manager: join(ROOT, "packages/manager/bin/lacewing-manager.js"),
};

export interface RunningProcess {
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export function startProcess(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): RunningProcess {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    child,
    output: () => output,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Starts a dfdaemon and waits until its socket exists. */
export async function startDaemon(dir: string, extra: string[] = []): Promise<RunningProcess & { socket: string }> {
  const socket = join(dir, "dfdaemon.sock");
  const daemon = startProcess(BIN.dfdaemon, [
    "--data-dir",
    join(dir, "data"),
    "--socket",
    socket,
    "--advertise-ip",
    "127.0.0.1",
    "--log-level",
    "warn",
    ...extra,
  ]);
  for (let i = 0; i < 200; i++) {
    if (daemon.child.exitCode !== null) throw new Error(`dfdaemon exited: ${daemon.output()}`);
    try {
      await access(socket);
      return { ...daemon, socket };
    } catch {
      await sleep(50);
    }
  }
  await daemon.stop();
  throw new Error(`dfdaemon did not open its socket: ${daemon.output()}`);
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCommand(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}
