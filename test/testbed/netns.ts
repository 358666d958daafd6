// Several hosts on one machine: one network namespace per host, all joined
// by one bridge through veth pairs, each host's uplink capped by a token
// bucket (tc tbf) on the egress of its own interface. Needs root, ip and tc.
//
// Names carry the creating process's pid (base 36, to fit the kernel's
// 15-character interface names), so a later run can tell a crashed run's
// leftovers (pid gone) from a run still in progress and remove only those.
import { mustRun, runTool } from "./command.js";

export interface Host {
  /** Short name inside the testbed, e.g. `origin`, `peer3`. */
  name: string;
  /** Network namespace, for `ip netns exec`. */
  ns: string;
  /** Address on the testbed bridge. */
  ip: string;
  /** With zones: the zone (0, 1, …) whose bridge the host is on. */
  zone: number;
}

/**
 * Zones: one bridge and /24 per zone, joined by a router namespace whose
 * link into each zone is capped (tc tbf on the router's leg) and counted.
 */
export interface ZoneOptions {
  /** The zone of every host, by name. */
  of: Readonly<Record<string, number>>;
  /** Cap of the router's link into each zone, Mbit/s. */
  interZoneMbit: number;
  /** TCP source port whose forwarded bytes count as piece bytes (the daemons' upload port). */
  piecePort: number;
}

export interface NetworkOptions {
  /** Host names; each gets the next address from `.2`. */
  hosts: readonly string[];
  /** Uplink cap of every host in Mbit/s (10^6 bit/s, as tc counts). */
  rateMbit: number;
  /** First three octets of the /24 the hosts live in (the first zone's; zone z uses the third octet + z). */
  subnet?: string;
  zones?: ZoneOptions;
}

/** What crossed between zones through the router, in bytes. */
export interface CrossZoneTraffic {
  /** Every byte the router forwarded into another zone (pieces, the origin's responses, control traffic). */
  total: number;
  /** Bytes from a daemon's upload port in one zone to a host in another: piece bytes. */
  pieces: number;
}

const NS_PREFIX = "lwtb-";
const LINK_PREFIX = "lwt";
/** Host interface name inside each namespace; namespaces do not share interface names. */
const HOST_DEV = "eth0";
/** Names are per process, so one process holds one network at a time. */
let networkOpen = false;

function runId(pid: number): string {
  return pid.toString(36);
}

/** Whether a process with this pid exists (EPERM means it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A token bucket sized for the rate: at least 10 ms of traffic (a tbf bucket
 * smaller than rate/HZ cannot reach its rate) and never below 64 KiB so a
 * full GSO segment fits. `latency` bounds the queue; 50 ms keeps TCP from
 * seeing drops as congestion at every burst.
 */
export function tbfArgs(rateMbit: number): string[] {
  const burstBytes = Math.max(64 * 1024, Math.ceil((rateMbit * 1e6) / 8 / 100));
  return ["tbf", "rate", `${rateMbit}mbit`, "burst", String(burstBytes), "latency", "50ms"];
}

export class Network {
  readonly hosts: ReadonlyMap<string, Host>;
  readonly bridge: string;
  readonly rateMbit: number;
  /** With zones: the router's namespace. */
  router: string | undefined;
  #links: string[];
  #closed = false;

  private constructor(hosts: Map<string, Host>, bridge: string, links: string[], rateMbit: number) {
    this.hosts = hosts;
    this.bridge = bridge;
    this.#links = links;
    this.rateMbit = rateMbit;
  }

  /** Builds the bridge and every host; on any failure removes what it built and rethrows. */
  static async create(options: NetworkOptions): Promise<Network> {
    if (options.hosts.length > 250) throw new Error("at most 250 hosts fit the /24");
    if (networkOpen) throw new Error("this process already has a testbed network open");
    networkOpen = true;
    const id = runId(process.pid);
    const subnet = options.subnet ?? "10.77.0";
    const bridge = `${LINK_PREFIX}${id}br`;
    const hosts = new Map<string, Host>();
    const links: string[] = [];
    const network = new Network(hosts, bridge, links, options.rateMbit);
    const zoneOf = (name: string): number => {
      if (options.zones === undefined) return 0;
      const zone = options.zones.of[name];
      if (zone === undefined) throw new Error(`host ${name} has no zone`);
      return zone;
    };
    const zoneCount = options.zones === undefined ? 1 : Math.max(...options.hosts.map(zoneOf)) + 1;
    // Zone z: its own bridge (zone 0's is `bridge`) and the /24 whose third octet is the subnet's plus z.
    const [a, b, c] = subnet.split(".").map(Number) as [number, number, number];
    const subnetOf = (zone: number): string => `${a}.${b}.${c + zone}`;
    const bridges = Array.from({ length: zoneCount }, (_, zone) => (zone === 0 ? bridge : `${LINK_PREFIX}${id}b${zone}`));
    try {
      for (const zoneBridge of bridges) {
        await mustRun("ip", ["link", "add", zoneBridge, "type", "bridge"]);
        links.push(zoneBridge);
        await mustRun("ip", ["link", "set", zoneBridge, "up"]);
      }
      const inZone = new Array<number>(zoneCount).fill(0);
      for (const [index, name] of options.hosts.entries()) {
        if (hosts.has(name)) throw new Error(`duplicate host name ${name}`);
        const zone = zoneOf(name);
        const host: Host = { name, ns: `${NS_PREFIX}${process.pid}-${name}`, ip: `${subnetOf(zone)}.${++inZone[zone]! + 1}`, zone };
        const outside = `${LINK_PREFIX}${id}-${index}`;
        await mustRun("ip", ["netns", "add", host.ns]);
        hosts.set(name, host);
        await mustRun("ip", ["link", "add", outside, "type", "veth", "peer", "name", HOST_DEV, "netns", host.ns]);
        links.push(outside);
        await mustRun("ip", ["link", "set", outside, "master", bridges[zone]!, "up"]);
        await mustRun("ip", ["-n", host.ns, "addr", "add", `${host.ip}/24`, "dev", HOST_DEV]);
        await mustRun("ip", ["-n", host.ns, "link", "set", HOST_DEV, "up"]);
        await mustRun("ip", ["-n", host.ns, "link", "set", "lo", "up"]);
        await mustRun("tc", ["-n", host.ns, "qdisc", "add", "dev", HOST_DEV, "root", ...tbfArgs(options.rateMbit)]);
        if (options.zones !== undefined) await mustRun("ip", ["-n", host.ns, "route", "add", "default", "via", `${subnetOf(zone)}.1`]);
      }
      if (options.zones !== undefined) await network.#addRouter(id, bridges, subnetOf, options.zones);
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  /** The router: one leg per zone bridge at `.1`, forwarding, the link into each zone capped, piece bytes counted by direction. */
  async #addRouter(id: string, bridges: string[], subnetOf: (zone: number) => string, zones: ZoneOptions): Promise<void> {
    const router = `${NS_PREFIX}${process.pid}-router`;
    await mustRun("ip", ["netns", "add", router]);
    this.router = router;
    await mustRun("ip", ["-n", router, "link", "set", "lo", "up"]);
    await mustRun("ip", ["netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    for (const [zone, zoneBridge] of bridges.entries()) {
      const outside = `${LINK_PREFIX}${id}-r${zone}`;
      await mustRun("ip", ["link", "add", outside, "type", "veth", "peer", "name", `z${zone}`, "netns", router]);
      this.#links.push(outside);
      await mustRun("ip", ["link", "set", outside, "master", zoneBridge, "up"]);
      await mustRun("ip", ["-n", router, "addr", "add", `${subnetOf(zone)}.1/24`, "dev", `z${zone}`]);
      await mustRun("ip", ["-n", router, "link", "set", `z${zone}`, "up"]);
      await mustRun("tc", ["-n", router, "qdisc", "add", "dev", `z${zone}`, "root", ...tbfArgs(zones.interZoneMbit)]);
    }
    for (let from = 0; from < bridges.length; from++)
      for (let to = 0; to < bridges.length; to++)
        if (from !== to) {
          const common = ["-A", "FORWARD", "-i", `z${from}`, "-o", `z${to}`];
          await mustRun("ip", ["netns", "exec", router, "iptables", ...common, "-p", "tcp", "--sport", String(zones.piecePort), "-j", "ACCEPT"]);
          await mustRun("ip", ["netns", "exec", router, "iptables", ...common, "-j", "ACCEPT"]);
        }
  }

  /** Bytes the router has forwarded between zones so far (counters since the network was made). */
  async crossZoneTraffic(): Promise<CrossZoneTraffic> {
    if (this.router === undefined) return { total: 0, pieces: 0 };
    const listing = await mustRun("ip", ["netns", "exec", this.router, "iptables", "-L", "FORWARD", "-v", "-x", "-n"]);
    const traffic = { total: 0, pieces: 0 };
    for (const line of listing.split("\n")) {
      const fields = line.trim().split(/\s+/);
      // pkts bytes target prot opt in out source destination [tcp spt:4001]
      if (fields[2] !== "ACCEPT") continue;
      const bytes = Number(fields[1]);
      traffic.total += bytes;
      if (line.includes("spt:")) traffic.pieces += bytes;
    }
    return traffic;
  }

  host(name: string): Host {
    const host = this.hosts.get(name);
    if (host === undefined) throw new Error(`no host ${name} in the testbed`);
    return host;
  }

  /**
   * Kills whatever still runs in the namespaces (a namespace outlives
   * `ip netns del` while a process holds it), then removes namespaces and
   * links. Idempotent; never throws.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const host of this.hosts.values()) await removeNamespace(host.ns);
    if (this.router !== undefined) await removeNamespace(this.router);
    for (const link of this.#links.reverse()) await runTool("ip", ["link", "del", link]).catch(() => undefined);
    networkOpen = false;
  }
}

async function removeNamespace(ns: string): Promise<void> {
  const pids = await runTool("ip", ["netns", "pids", ns]).catch(() => undefined);
  for (const pid of (pids?.stdout ?? "").split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await runTool("ip", ["netns", "del", ns]).catch(() => undefined);
}

/**
 * Removes namespaces and links left by testbed runs whose process is gone
 * (a crash, a SIGKILL, a CI timeout). Runs that are still alive keep theirs.
 * Returns what it removed.
 */
export function removeLeftovers(): Promise<string[]> {
  return removeNetworks((pid) => !isAlive(pid));
}

/** Removes this process's own network even when its Network object is out of reach (a signal during Network.create). */
export function removeOwnNetwork(): Promise<string[]> {
  networkOpen = false;
  return removeNetworks((pid) => pid === process.pid);
}

async function removeNetworks(owned: (pid: number) => boolean): Promise<string[]> {
  const removed: string[] = [];
  const namespaces = await runTool("ip", ["netns", "list"]);
  for (const line of namespaces.stdout.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const match = new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(name);
    if (match === null || !owned(Number(match[1]))) continue;
    await removeNamespace(name);
    removed.push(name);
  }
  const links = await runTool("ip", ["-o", "link", "show"]);
  for (const line of links.stdout.split("\n")) {
    // "12: lwt2ryeo-3@if2: <...>" or "11: lwt2ryeobr: <...>"
    const name = (line.split(": ")[1] ?? "").split("@")[0] ?? "";
    const match = new RegExp(`^${LINK_PREFIX}([0-9a-z]+?)(br|b\\d+|-\\d+|-r\\d+)$`).exec(name);
    if (match === null || !owned(parseInt(match[1] ?? "", 36))) continue;
    await runTool("ip", ["link", "del", name]).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}
