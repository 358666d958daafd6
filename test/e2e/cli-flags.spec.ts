import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dfdaemonSchema } from "@lacewing/dfdaemon";
import { managerConfigSchema } from "@lacewing/manager";
import { schedulerConfigSchema } from "@lacewing/scheduler";
import { flagOf, type Schema } from "@lacewing/common";
import { BIN, runCommand } from "../helpers/processes.js";

/** The long flags a commander --help lists, with the rest of each line. */
async function helpOf(bin: string, args: string[]): Promise<Map<string, string>> {
  const result = await runCommand(bin, [...args, "--help"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = new Map<string, string>();
  for (const match of result.stdout.matchAll(/^\s+(?:-[A-Za-z], )?--(?:no-)?([a-z0-9][a-z0-9-]*)(.*)$/gm)) lines.set(`--${match[1]!}`, match[2]!);
  return lines;
}

const BINARIES: Array<[string, string, string[], Schema]> = [
  ["dfdaemon run", BIN.dfdaemon, ["run"], dfdaemonSchema],
  ["lacewing-scheduler", BIN.scheduler, [], schedulerConfigSchema],
  ["lacewing-manager run", BIN.manager, ["run"], managerConfigSchema],
];

describe("every setting has a flag, from the config schema", () => {
  for (const [name, bin, args, schema] of BINARIES)
    it(`${name}: --help lists a flag for each key (but YAML-only maps) with its default and environment variable`, async () => {
      const help = await helpOf(bin, args);
      for (const [key, spec] of Object.entries(schema)) {
        if (spec.kind === "map") continue;
        const line = help.get(flagOf(key));
        assert.ok(line !== undefined, `${name} has no ${flagOf(key)} for ${key}`);
        if (spec.env !== undefined) assert.ok(line.includes(`env ${spec.env}`), `${flagOf(key)} names ${spec.env}: ${line}`);
      }
    });
});
