import { ErrorCode } from "./error-codes.js";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { LacewingError, errorMessage } from "./errors.js";
import type { Logger } from "./logger.js";

/** One configured `--scheduler` entry, split into host and port. */
export interface SchedulerEntry {
  host: string;
  port: number;
}

export function parseSchedulerEntry(entry: string): SchedulerEntry {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(entry.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new LacewingError(ErrorCode.config, "invalid_argument", `scheduler address ${JSON.stringify(entry)} is not HOST:PORT`);
  return { host: match[1]!, port };
}

function endpointOf(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Every address a name resolves to; injectable for tests. */
export type LookupAll = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: LookupAll = (host) => lookup(host, { all: true });

/**
 * The endpoints `ip:port` one entry names right now: an IP literal is
 * itself, a DNS name counts once per address it resolves to (a headless
 * Service with several replicas). Rejects when the name does not resolve.
 */
async function resolveEntry({ host, port }: SchedulerEntry, lookupAll: LookupAll): Promise<string[]> {
  if (isIP(host) !== 0) return [endpointOf(host, port)];
  // One family only: "localhost" answering 127.0.0.1 and ::1 is one scheduler, not two.
  const addresses = await lookupAll(host);
  const v4 = addresses.filter((a) => a.family === 4);
  return (v4.length > 0 ? v4 : addresses).map(({ address }) => endpointOf(address, port));
}

/** Something to close: a client of one scheduler endpoint. */
export interface Closable {
  close(): void;
}

export interface SchedulerEndpointsOptions<Client extends Closable> {
  /** `--scheduler` entries, HOST:PORT each. */
  entries: readonly string[];
  /** Opens a client of one endpoint; called once per endpoint while it stays listed. */
  connect: (endpoint: string) => Client;
  /** How often names are looked up again while all resolve (so scaled replicas are picked up). */
  refreshMs: number;
  /** How soon names are looked up again while one does not resolve. */
  retryMs: number;
  lookup?: LookupAll;
  log?: Logger;
  /** The list changed: `added` were not listed before, `removed` are gone (their clients closed). */
  onChange?: (change: { endpoints: readonly string[]; added: string[]; removed: string[] }) => void;
}

/**
 * The scheduler endpoints a process hashes tasks over, and one client per
 * endpoint. Names are looked up at start and again now and then. A name
 * that stops resolving keeps the addresses it last resolved to (reported in
 * `unresolved` meanwhile): a DNS blip must not empty the list and send every
 * new task back to source. Endpoints are sorted, so every process that sees
 * the same records hashes tasks to the same owner.
 */
export class SchedulerEndpoints<Client extends Closable> {
  readonly #options: SchedulerEndpointsOptions<Client>;
  readonly #entries: SchedulerEntry[];
  /** What each entry last resolved to, by entry ("host:port"). */
  readonly #resolved = new Map<string, string[]>();
  readonly #clients = new Map<string, Client>();
  #endpoints: string[] = [];
  #unresolved = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SchedulerEndpointsOptions<Client>) {
    this.#options = options;
    this.#entries = options.entries.map(parseSchedulerEntry);
  }

  /** True when any `--scheduler` entry is configured. */
  get configured(): boolean {
    return this.#entries.length > 0;
  }

  /** The endpoints tasks are hashed over, sorted. */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** Entries whose name did not resolve at the last lookup, with the resolver's error code. */
  get unresolved(): ReadonlyMap<string, string> {
    return this.#unresolved;
  }

  /** Looks the names up now, and again now and then until close(). */
  async start(): Promise<void> {
    await this.refresh();
  }

  /** Looks the names up once and applies the result. */
  async refresh(): Promise<void> {
    if (this.#closed) return;
    const lookupAll = this.#options.lookup ?? systemLookup;
    const unresolved = new Map<string, string>();
    await Promise.all(
      this.#entries.map(async (entry) => {
        const key = `${entry.host}:${entry.port}`;
        try {
          this.#resolved.set(key, await resolveEntry(entry, lookupAll));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
          unresolved.set(key, code);
          if (!this.#unresolved.has(key))
            this.#options.log?.warn(
              { scheduler: key, err: code, keeping: this.#resolved.get(key) ?? [] },
              "cannot resolve scheduler address; keeping the addresses it last had and retrying",
            );
        }
      }),
    );
    if (this.#closed) return;
    this.#unresolved = unresolved;
    this.#apply([...new Set([...this.#resolved.values()].flat())].sort());
    if (this.#entries.length === 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.refresh(), unresolved.size > 0 ? this.#options.retryMs : this.#options.refreshMs);
    this.#timer.unref();
  }

  /** The client of `endpoint`, opened on first use. */
  client(endpoint: string): Client {
    let client = this.#clients.get(endpoint);
    if (client === undefined) {
      client = this.#options.connect(endpoint);
      this.#clients.set(endpoint, client);
    }
    return client;
  }

  /** Stops looking names up and closes every client. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #apply(endpoints: string[]): void {
    const added = endpoints.filter((endpoint) => !this.#endpoints.includes(endpoint));
    const removed = this.#endpoints.filter((endpoint) => !endpoints.includes(endpoint));
    this.#endpoints = endpoints;
    for (const endpoint of removed) {
      this.#clients.get(endpoint)?.close();
      this.#clients.delete(endpoint);
    }
    if (added.length > 0 || removed.length > 0) this.#options.onChange?.({ endpoints, added, removed });
  }
}
