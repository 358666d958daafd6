import { Command } from "commander";
import { addSchemaOptions, createLogger } from "@lacewing/common";
import { dfdaemonSchema, loadDfdaemonConfig } from "../config.js";
import { Dfdaemon } from "../daemon.js";

/** `dfdaemon [run]`: the daemon itself, the default command. */
export function runCommand(): Command {
  const command = new Command("run")
    .description("run the node daemon (the default command)")
    .option("--config <file>", "YAML config file (keys as the flags, in camelCase)");
  return addSchemaOptions(command, dfdaemonSchema).action(async (flags: Record<string, unknown>) => {
    const config = loadDfdaemonConfig({ file: flags["config"] as string | undefined, env: process.env, flags });
    const log = createLogger({ name: "dfdaemon", level: config.logLevel });
    const daemon = new Dfdaemon(config, log, { defaultMetrics: true });
    await daemon.start();
    const stop = (): void => {
      daemon.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}
