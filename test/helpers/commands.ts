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
  /** stdout and stderr as they arrived, less the lines the starter's `keep` left out. */
  output: () => string;
  /**
   * Resolves with the first `count` (default 1) lines of stdout or stderr
   * that match `pattern`, counting lines already seen and those `keep`
   * leaves out of output(); rejects when the process exits first or after
   * `timeoutMs` (default 60 s).
   */
  waitForLines: (pattern: RegExp, options?: { count?: number; timeoutMs?: number }) => Promise<string[]>;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Which complete lines output() shows (all by default): a process may log more than a failure message should carry. */
  keep?: (line: string) => boolean;
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

/** Starts a long-running binary, collecting its output line by line. */
export function startBinary(command: string, args: string[], options: StartOptions = {}): RunningProcess {
  const child = spawn(command, args, { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
  const keep = options.keep ?? (() => true);
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; count: number; found: string[]; settle: (err?: Error) => void }>();
  const partial = { stdout: "", stderr: "" };
  const seen = (line: string): void => {
    lines.push(line);
    for (const waiter of waiters) {
      if (!waiter.pattern.test(line)) continue;
      waiter.found.push(line);
      if (waiter.found.length >= waiter.count) waiter.settle();
    }
  };
  const collect = (stream: "stdout" | "stderr") => (data: string) => {
    const parts = (partial[stream] + data).split("\n");
    partial[stream] = parts.pop() ?? "";
    parts.forEach(seen);
  };
  const output = (): string => {
    const shown = lines.filter(keep);
    const tails = [partial.stdout, partial.stderr].filter((tail) => tail !== "");
    return [...shown.map((line) => `${line}\n`), ...tails].join("");
  };
  // Decoded as a stream, so a character split across two chunks stays whole.
  child.stdout?.setEncoding("utf8").on("data", collect("stdout"));
  child.stderr?.setEncoding("utf8").on("data", collect("stderr"));
  child.once("error", (err) => seen(`spawn failed: ${err.message}`));
  const exitedBefore = (pattern: RegExp): Error =>
    new Error(`${command} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${output()}`);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // "close", not "exit": by then every line the process wrote has been read.
  let closed = false;
  child.once("close", () => {
    closed = true;
    for (const stream of ["stdout", "stderr"] as const) if (partial[stream] !== "") seen(partial[stream]);
    partial.stdout = partial.stderr = "";
    for (const waiter of waiters) waiter.settle(exitedBefore(waiter.pattern));
  });
  return {
    child,
    output,
    waitForLines: (pattern, { count = 1, timeoutMs = 60_000 } = {}) =>
      new Promise((resolve, reject) => {
        // A global pattern's lastIndex would carry over from one line to the next.
        const matcher = new RegExp(pattern.source, pattern.flags.replace("g", ""));
        const found = lines.filter((line) => matcher.test(line));
        if (found.length >= count) return resolve(found.slice(0, count));
        if (closed) return reject(exitedBefore(pattern));
        const waiter = {
          pattern: matcher,
          count,
          found,
          settle: (err?: Error) => {
            clearTimeout(timer);
            waiters.delete(waiter);
            if (err === undefined) resolve(found.slice(0, count));
            else reject(err);
          },
        };
        const timer = setTimeout(
          () => waiter.settle(new Error(`${command}: no ${count} lines matching ${pattern} within ${timeoutMs} ms:\n${output()}`)),
          timeoutMs,
        );
        waiters.add(waiter);
      }),
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
