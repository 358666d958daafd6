import { Command } from "commander";
import { createLogger, errorMessage } from "@lacewing/common";
import { loadDfdaemonConfig } from "../config.js";
import { Dfdaemon } from "../daemon.js";

const program = new Command("dfdaemon")
  .description("Lacewing node daemon: downloads tasks piece by piece and serves dfget")
  .option("--config <file>", "YAML config file")
  .option("--scheduler <addresses>", "scheduler HOST:PORT[,HOST:PORT…]")
  .option("--data-dir <dir>", "where pieces are stored")
  .option("--advertise-ip <ip>", "IP other peers reach this node at")
  .option("--seed", "run as a seed peer")
  .option("--upload-port <port>", "HTTP port serving pieces")
  .option("--proxy-port <port>", "registry mirror port")
  .option("--peer-port <port>", "gRPC port for peers")
  .option("--socket <path>", "unix socket for dfget")
  .option("--idc <name>", "data centre")
  .option("--location <a|b|c>", "location")
  .option("--origin-concurrency <n>", "pieces fetched from the origin at once")
  .option("--log-level <level>", "log level")
  .action(async (flags: Record<string, unknown>) => {
    const config = loadDfdaemonConfig({ file: flags["config"] as string | undefined, env: process.env, flags });
    const log = createLogger({ name: "dfdaemon", level: config.logLevel });
    const daemon = new Dfdaemon(config, log);
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

program.parseAsync().catch((err: unknown) => {
  console.error(`dfdaemon: ${errorMessage(err)}`);
  process.exit(1);
});
