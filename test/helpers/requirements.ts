// What a multi-process suite needs from the machine (root, Debian tools,
// Postgres and Redis), and what happens when something is missing.
//
//   const skip = await skipUnlessAvailable("registry mirror e2e", { root: true, commands: ["containerd", "ctr"] });
//   describe("registry mirror …", { skip }, () => { … });
//
// On a developer's machine a suite that lacks something is skipped, and a
// skipped test naming the suite and what is missing is registered beside it,
// because node's runner counts a skipped `describe` nowhere: the summary's
// `skipped N` and the `# needs …` lines say what did not run. Under CI (`CI`
// set, as the runner and .ci/run do) a missing requirement is a failure
// instead: .ci/run installs every tool and starts every service, so a skip
// there would only hide a broken install.
import { connect } from "node:net";
import { test } from "node:test";
import { missingCommands } from "./commands.js";

export interface Requirements {
  /** Runs only as root (containerd, mounts, network namespaces). */
  root?: boolean;
  /** Linux only (namespaces, containerd). */
  linux?: boolean;
  /** Binaries that must be on PATH. */
  commands?: readonly string[];
  /** TCP services that must accept connections on loopback. */
  services?: ReadonlyArray<{ name: string; port: number; host?: string }>;
  /** Further unmet needs found by the caller, as short phrases ("helm for linux/x64"); empty strings are ignored. */
  other?: ReadonlyArray<string | undefined>;
}

/** True when the environment says this is a CI run (`CI` set to anything but "", "0" or "false"). */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env["CI"]?.trim().toLowerCase();
  return value !== undefined && value !== "" && value !== "0" && value !== "false";
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

/** What of `requirements` this machine lacks, as short phrases; empty when everything is there. */
export async function unmetRequirements(requirements: Requirements): Promise<string[]> {
  const unmet: string[] = [];
  if (requirements.linux === true && process.platform !== "linux") unmet.push("Linux");
  if (requirements.root === true && process.getuid?.() !== 0) unmet.push("root");
  const commands = await missingCommands(...(requirements.commands ?? []));
  if (commands.length > 0) unmet.push(commands.join(", "));
  for (const { name, port, host = "127.0.0.1" } of requirements.services ?? []) {
    if (!(await accepts(host, port))) unmet.push(`${name} on ${host}:${port}`);
  }
  for (const other of requirements.other ?? []) if (other !== undefined && other !== "") unmet.push(other);
  return unmet;
}

/**
 * The `skip` option for the suite named `suite`: false when the machine has
 * everything, otherwise a "needs …" reason (and a skipped test with that
 * reason, so the summary counts it). Under CI it throws instead, which fails
 * the test file that asked.
 */
export async function skipUnlessAvailable(suite: string, requirements: Requirements, env: NodeJS.ProcessEnv = process.env): Promise<string | false> {
  const unmet = await unmetRequirements(requirements);
  if (unmet.length === 0) return false;
  const reason = `needs ${unmet.join("; ")} (installed and started by .ci/run)`;
  if (isCi(env)) throw new Error(`${suite} ${reason}: under CI a missing requirement fails instead of skipping`);
  test(`${suite}: skipped`, { skip: reason }, () => {});
  return reason;
}
