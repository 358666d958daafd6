import { spawn } from "node:child_process";

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a system tool (ip, tc, curl) to completion. Always asynchronous: the
 * testbed's callers may host servers in the same process, and a spawnSync
 * would stall them.
 */
export function runTool(command: string, args: readonly string[], options: { input?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like runTool, but a non-zero exit is an error naming the command and its stderr. */
export async function mustRun(command: string, args: readonly string[], options: { input?: string } = {}): Promise<string> {
  const result = await runTool(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** Whether `command` can be found on PATH (or at its absolute path). */
export async function hasCommand(command: string): Promise<boolean> {
  const result = await runTool("sh", ["-c", `command -v "$1"`, "sh", command]).catch(() => undefined);
  return result?.code === 0;
}
