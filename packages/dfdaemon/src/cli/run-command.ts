import { Command } from "commander";
import { cliOptionsOf, createLogger } from "@lacewing/common";
import { DFDAEMON_SCHEMA_FLAGS, dfdaemonSchema, loadDfdaemonConfig } from "../config.js";
import { Dfdaemon } from "../daemon.js";

/** `dfdaemon [run]`: the daemon itself, the default command. */
export function runCommand(): Command {
  const command = new Command("run");
  for (const option of cliOptionsOf(dfdaemonSchema, DFDAEMON_SCHEMA_FLAGS)) command.option(option.flags, option.description);
  return command
    .description("run the node daemon (the default command)")
    .option("--config <file>", "YAML config file")
    .option("--scheduler <addresses>", "scheduler HOST:PORT[,HOST:PORT…]; a name with several A records counts as several")
    .option("--data-dir <dir>", "where pieces are stored")
    .option("--advertise-ip <ip>", "IP other peers reach this node at")
    .option("--seed", "run as a seed peer")
    .option("--upload-port <port>", "HTTP port serving pieces")
    .option("--proxy-port <port>", "registry mirror port")
    .option("--peer-port <port>", "gRPC port for peers")
    .option("--metrics-port <port>", "port of /metrics, /healthz and /readyz")
    .option("--listen-ip <ip>", "address the peer, upload and metrics ports bind to")
    .option("--socket <path>", "unix socket for dfget")
    .option("--idc <name>", "data centre")
    .option("--location <a|b|c>", "location")
    .option("--origin-concurrency <n>", "pieces fetched from the origin at once")
    .option("--disable-back-to-source", "never fetch from the origin; fail when peers cannot serve")
    .option("--gc-interval <duration>", "how often the cache collector runs (default 1m)")
    .option("--task-ttl <duration>", "evict a task not read or downloaded for this long (default 6h)")
    .option("--disk-quota <size>", "most bytes the cache may hold, e.g. 50GiB (default 0: no quota)")
    .option("--high-watermark <percent>", "percent of the quota (or of the filesystem without one): above it, evict least recently used tasks (default 90)")
    .option("--low-watermark <percent>", "evict down to this percentage (default 80)")
    .option("--keep-storage <bool>", "keep the cache across restarts (default true)")
    .option("--output-temp-ttl <duration>", "remove an output's temp files left by a crashed run once older than this (default 10m)")
    .option("--announce-interval <duration>", "how often the host announces itself to each scheduler (e.g. 10s)")
    .option("--peer-concurrency <n>", "pieces fetched from parents at once")
    .option("--piece-timeout <duration>", "longest a parent may take for one piece before it is dropped")
    .option("--max-reschedules <n>", "new parent sets asked for before going back to source")
    .option("--upload-limit <n>", "pieces served to other peers at once")
    .option("--proxy-default-registry <host>", "registry for mirror requests without containerd's ns parameter")
    .option("--proxy-registries <hosts>", "registries the mirror serves, comma-separated (required for the mirror to serve anything)")
    .option("--proxy-plain-http-registries <hosts>", "registries the mirror reaches over plain HTTP, comma-separated")
    .option("--proxy-stall-timeout <duration>", "serve a blob from the registry when no piece lands for this long")
    .option("--super-seed-window <duration>", "seed peers send each piece once per this window (0: off)")
    .option("--upload-rate-limit <size>", "upload bytes per second to other peers, e.g. 100MiB (0: unlimited)")
    .option("--log-level <level>", "log level")
    .action(async (flags: Record<string, unknown>) => {
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
