import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { LacewingError } from "./errors.js";

/** One configured `--scheduler` entry, split into host and port. */
export interface SchedulerEntry {
  host: string;
  port: number;
}

export function parseSchedulerEntry(entry: string): SchedulerEntry {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(entry.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new LacewingError("LW_ERR_CONFIG", "invalid_argument", `scheduler address ${JSON.stringify(entry)} is not HOST:PORT`);
  return { host: match[1]!, port };
}

function endpointOf(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Every address a name resolves to; injectable for tests. */
export type LookupAll = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: LookupAll = (host) => lookup(host, { all: true });

/**
 * The scheduler endpoints `ip:port` that the entries name right now: an IP
 * literal is itself, a DNS name counts once per address it resolves to (a
 * headless Service with several replicas). Sorted, so every daemon that sees
 * the same records hashes tasks to the same owner. A name that does not
 * resolve is left out and reported in `unresolved`.
 */
export async function resolveSchedulerEndpoints(
  entries: SchedulerEntry[],
  lookupAll: LookupAll = systemLookup,
): Promise<{ endpoints: string[]; unresolved: Map<string, string> }> {
  const endpoints = new Set<string>();
  const unresolved = new Map<string, string>();
  await Promise.all(
    entries.map(async ({ host, port }) => {
      if (isIP(host) !== 0) {
        endpoints.add(endpointOf(host, port));
        return;
      }
      try {
        // One family only: "localhost" answering 127.0.0.1 and ::1 is one scheduler, not two.
        const addresses = await lookupAll(host);
        const v4 = addresses.filter((a) => a.family === 4);
        for (const { address } of v4.length > 0 ? v4 : addresses) endpoints.add(endpointOf(address, port));
      } catch (err) {
        unresolved.set(`${host}:${port}`, (err as NodeJS.ErrnoException).code ?? String(err));
      }
    }),
  );
  return { endpoints: [...endpoints].sort(), unresolved };
}
