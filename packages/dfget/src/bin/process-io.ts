import { ExitCode } from "../cli/exit-codes.js";

/** What dfget and dfcache take from the process they run in. */
export interface ProcessIo {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  signal: AbortSignal;
}

/**
 * Runs a CLI in this process: its arguments, environment and streams, Ctrl-C
 * as an abort (a second one exits at once, without waiting for the daemon to
 * acknowledge the cancel), and its result as the exit code.
 */
export async function runInProcess(run: (io: ProcessIo) => Promise<number>): Promise<void> {
  const interrupt = new AbortController();
  process.on("SIGINT", () => {
    if (interrupt.signal.aborted) process.exit(ExitCode.interrupted);
    interrupt.abort();
  });
  process.exitCode = await run({
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    signal: interrupt.signal,
  });
}
