import { Command } from "commander";
import { cliOptionsOf, createLogger, errorMessage } from "@lacewing/common";
import { MANAGER_SCHEMA_FLAGS, loadManagerConfig, managerConfigSchema } from "../config.js";
import { Manager } from "../manager.js";

/** `lacewing-manager [run]`: the control plane itself, the default command. */
export function runCommand(): Command {
  const command = new Command("run")
    .description("run the control plane (the default command)")
    .option("--listen <host:port>", "REST API address (also /metrics, /healthz, /readyz)")
    .option("--grpc-listen <host:port>", "gRPC API address")
    .option("--database-url <url>", "Postgres URL; omit for the embedded Postgres")
    .option("--database-schema <name>", "Postgres schema of the manager's tables (default public)")
    .option("--data-dir <dir>", "embedded Postgres directory; omit to keep it in memory")
    .option("--redis-url <url>", "Redis URL for the job queue; omit to run jobs in-process")
    .option("--queue-prefix <prefix>", "BullMQ key prefix in Redis (default lacewing)")
    .option("--scheduler <host:port,...>", "scheduler addresses")
    .option("--token <token>", "bearer token API calls must carry")
    .option("--allowed-hosts <host,...>", "without a token: more Host names the REST API answers to (NAME or NAME:PORT)")
    .option("--log-level <level>", "trace, debug, info, warn, error or silent")
    .option("--config <file>", "YAML config file");
  for (const option of cliOptionsOf(managerConfigSchema, MANAGER_SCHEMA_FLAGS)) command.option(option.flags, option.description);
  return command.showHelpAfterError().action(async (flags: Record<string, string | undefined>) => {
    const config = loadManagerConfig({ file: flags["config"], env: process.env, flags });
    const logger = createLogger({ name: "lacewing-manager", level: config.logLevel });
    const manager = new Manager(config, { logger, defaultMetrics: true });
    await manager.start();
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "shutting down");
      manager.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err: errorMessage(err) }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  });
}
