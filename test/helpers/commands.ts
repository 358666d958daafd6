import { spawn, type ChildProcess } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningProcess {
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

/**
 * Runs system binaries (containerd, docker-registry, skopeo, umoci, openssl)
 * asynchronously: the test process may host HTTP servers these talk to.
 */

/** Runs `command` to completion; never rejects for a non-zero exit. */
export function exec(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `command` and fails with its output when it exits non-zero. */
export async function execOk(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const result = await exec(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.code}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

/** Starts a long-running binary, collecting its output. */
export function startBinary(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): RunningProcess {
  const child = spawn(command, args, { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  child.once("error", (err) => (output += `spawn failed: ${err.message}\n`));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    output: () => output,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The binaries of `names` that are not on PATH. */
export async function missingCommands(...names: string[]): Promise<string[]> {
  const dirs = (process.env["PATH"] ?? "").split(delimiter).filter((d) => d !== "");
  const missing: string[] = [];
  for (const name of names) {
    let found = false;
    for (const dir of dirs) {
      try {
        await access(join(dir, name), constants.X_OK);
        found = true;
        break;
      } catch {
        // Not in this directory.
      }
    }
    if (!found) missing.push(name);
  }
  return missing;
}
