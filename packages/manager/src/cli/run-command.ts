import { Command } from "commander";
import { addSchemaOptions, createLogger, errorMessage } from "@lacewing/common";
import { loadManagerConfig, managerConfigSchema } from "../config.js";
import { Manager } from "../manager.js";

/** `lacewing-manager [run]`: the control plane itself, the default command. */
export function runCommand(): Command {
  const command = new Command("run")
    .description("run the control plane (the default command)")
    .option("--config <file>", "YAML config file (keys as the flags, in camelCase)");
  addSchemaOptions(command, managerConfigSchema);
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
