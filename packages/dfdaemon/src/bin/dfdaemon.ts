import { Command } from "commander";
import { errorMessage } from "@lacewing/common";
import { containerdConfigCommand } from "../cli/containerd-config-command.js";
import { gcCommand } from "../cli/gc-command.js";
import { nodeTopologyCommand } from "../cli/node-topology-command.js";
import { runCommand } from "../cli/run-command.js";
import { statusCommand } from "../cli/status-command.js";

const program = new Command("dfdaemon")
  .description("Lacewing node daemon: downloads tasks piece by piece, serves peers, dfget and containerd")
  .addCommand(runCommand(), { isDefault: true })
  .addCommand(statusCommand())
  .addCommand(containerdConfigCommand())
  .addCommand(gcCommand())
  .addCommand(nodeTopologyCommand());

program.parseAsync().catch((err: unknown) => {
  console.error(`dfdaemon: ${errorMessage(err)}`);
  process.exit(1);
});
