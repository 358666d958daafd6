import { Command } from "commander";
import { errorMessage } from "@lacewing/common";
import { runCommand } from "../cli/run-command.js";
import { statusCommand } from "../cli/status-command.js";

const program = new Command("dfdaemon")
  .description("Lacewing node daemon: downloads tasks piece by piece, serves peers, dfget and containerd")
  .addCommand(runCommand(), { isDefault: true })
  .addCommand(statusCommand());

program.parseAsync().catch((err: unknown) => {
  console.error(`dfdaemon: ${errorMessage(err)}`);
  process.exit(1);
});
