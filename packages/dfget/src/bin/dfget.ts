import { ExitCode } from "../cli/exit-codes.js";
import { runDfget } from "../cli/run.js";

const interrupt = new AbortController();
process.on("SIGINT", () => {
  // A second Ctrl-C does not wait for the daemon to acknowledge the cancel.
  if (interrupt.signal.aborted) process.exit(ExitCode.interrupted);
  interrupt.abort();
});

process.exitCode = await runDfget({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  signal: interrupt.signal,
});
