import { Command } from "commander";
import { logVerbosity, setLogVerbosity } from "@grpc/grpc-js";
import { addSchemaOptions, errorMessage, isLacewingError } from "@lacewing/common";
import { loadSchedulerConfig, schedulerConfigSchema } from "../config.js";
import { SchedulerServer } from "../scheduler-server.js";

const program = new Command("lacewing-scheduler")
  .description("Lacewing scheduler: chooses parents for downloading peers and triggers seed peers")
  .option("--config <file>", "YAML config file (keys as the flags, in camelCase)");
addSchemaOptions(program, schedulerConfigSchema);
program.configureOutput({ outputError: (text, write) => write(text) }).exitOverride();

// grpc-js would print its own copy of errors we already report in one line.
setLogVerbosity(logVerbosity.NONE);

async function main(): Promise<void> {
  try {
    program.parse();
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    process.exit(code === undefined ? 2 : code);
  }
  const flags = program.opts<Record<string, string | undefined>>();
  const { config: file, ...rest } = flags;
  const config = loadSchedulerConfig({ file, env: process.env, flags: rest });
  const scheduler = new SchedulerServer({ config, serveMetrics: true, defaultMetrics: true });
  await scheduler.start();

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    process.stderr.write(`lacewing-scheduler: ${signal} received, shutting down\n`);
    scheduler.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`lacewing-scheduler: shutdown failed: ${errorMessage(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  const message = isLacewingError(err) ? err.message : `cannot start: ${errorMessage(err)}`;
  process.stderr.write(`lacewing-scheduler: ${message}\n`);
  process.exit(1);
});
