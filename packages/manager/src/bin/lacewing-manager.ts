import { Command } from "commander";
import { errorMessage } from "@lacewing/common";
import { certsCommand } from "../cli/certs-command.js";
import { runCommand } from "../cli/run-command.js";

const program = new Command("lacewing-manager")
  .description("Lacewing control plane: preheat jobs, clusters, schedulers and hosts over REST and gRPC")
  .addCommand(runCommand(), { isDefault: true })
  .addCommand(certsCommand());

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`lacewing-manager: ${errorMessage(err)}\n`);
  process.exit(1);
});
