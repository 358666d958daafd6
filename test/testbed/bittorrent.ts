// The BitTorrent baseline on the testbed: opentracker and an aria2c seeder
// on the origin host (so the origin's uplink carries the first copies, as
// it does for Lacewing), and an aria2c leecher on every peer host. Plain
// BitTorrent as a rollout tool would run it: 1 MiB pieces, DHT, local peer
// discovery and peer exchange off (the tracker is the only way peers meet),
// trackers asked every 2 s.
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mustRun } from "./command.js";
import { runInHost, startInHost, type HostProcess } from "./cluster.js";
import type { Host } from "./netns.js";

const TRACKER_PORT = 6969;
const PEER_PORT = 6881;
const SEEDER_RPC_PORT = 6800;

/** aria2c options every BitTorrent process of the testbed shares. */
function aria2Options(dir: string): string[] {
  return [
    `--dir=${dir}`,
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--bt-tracker-interval=2",
    `--listen-port=${PEER_PORT}`,
    "--file-allocation=none",
    "--max-upload-limit=0",
    "--max-overall-upload-limit=0",
    "--console-log-level=warn",
    "--summary-interval=0",
    "--allow-overwrite=true",
    "--auto-file-renaming=false",
  ];
}

export interface Swarm {
  torrent: string;
  tracker: HostProcess;
  seeder: HostProcess;
  /** Payload bytes the seeder uploaded so far (aria2c's own count). */
  seederUploaded(): Promise<number>;
}

/** Makes the torrent of `blob` (on the origin host's disk) and starts the tracker and the seeder on `origin`. */
export async function startSwarm(origin: Host, blob: string, dir: string): Promise<Swarm> {
  const torrent = join(dir, "blob.torrent");
  await rm(torrent, { force: true });
  // 2^20: 1 MiB pieces.
  await mustRun("mktorrent", ["-l", "20", "-a", `http://${origin.ip}:${TRACKER_PORT}/announce`, "-o", torrent, blob]);
  // Debian's opentracker serves only whitelisted torrents: list this one's info hash.
  const infoHash = /Info Hash: ([0-9a-f]{40})/.exec(await mustRun("aria2c", ["-S", torrent]))?.[1];
  if (infoHash === undefined) throw new Error(`no info hash for ${torrent}`);
  const whitelist = join(dir, "whitelist");
  await writeFile(whitelist, `${infoHash}\n`);
  // It chroots into `dir` before reading the list, so the list is named from there.
  const trackerArgs = ["-i", origin.ip, "-p", String(TRACKER_PORT), "-P", String(TRACKER_PORT), "-d", dir, "-w", "/whitelist"];
  const tracker = await startInHost(origin, "opentracker", "opentracker", trackerArgs, dir);
  const blobDir = blob.slice(0, blob.lastIndexOf("/"));
  const seeder = await startInHost(
    origin,
    "aria2c-seeder",
    "aria2c",
    [
      ...aria2Options(blobDir),
      "--seed-ratio=0.0",
      "--check-integrity=true",
      "--bt-seed-unverified=false",
      "--enable-rpc=true",
      `--rpc-listen-port=${SEEDER_RPC_PORT}`,
      "--rpc-listen-all=false",
      torrent,
    ],
    dir,
  );
  const rpc = async (method: string, params: unknown[] = []): Promise<unknown> => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: "1", method, params });
    const result = await runInHost(origin, "curl", ["-sf", "--max-time", "2", "-d", body, `http://127.0.0.1:${SEEDER_RPC_PORT}/jsonrpc`]);
    return result.code === 0 ? (JSON.parse(result.stdout) as { result: unknown }).result : undefined;
  };
  // Seeding starts once the seeder checked the file against the torrent.
  for (let i = 0; ; i++) {
    const active = (await rpc("aria2.tellActive", [["status", "completedLength", "totalLength", "seeder"]])) as
      Array<{ status: string; seeder?: string; completedLength: string; totalLength: string }> | undefined;
    if (active?.some((d) => d.seeder === "true" && d.completedLength === d.totalLength)) break;
    if (i > 300) throw new Error(`the aria2c seeder did not start seeding:\n${await seeder.tail()}`);
    await sleep(100);
  }
  return {
    torrent,
    tracker,
    seeder,
    async seederUploaded() {
      const active = (await rpc("aria2.tellActive", [["uploadLength"]])) as Array<{ uploadLength: string }> | undefined;
      return (active ?? []).reduce((sum, d) => sum + Number(d.uploadLength), 0);
    },
  };
}

export interface Leecher {
  process: HostProcess;
  /** Resolves with the ms (performance.now()) the download completed, before seeding. */
  completed: Promise<number>;
  output: string;
}

/**
 * Starts an aria2c leecher on `host` that keeps seeding after it completes
 * (a peer of a rollout serves the others until it ends). Completion is
 * aria2c's own event (`--on-bt-download-complete`), noticed by polling the
 * marker file its hook writes.
 */
export async function startLeecher(host: Host, torrent: string, dir: string): Promise<Leecher> {
  await mkdir(dir, { recursive: true });
  const marker = join(dir, "complete");
  const hook = join(dir, "on-complete.sh");
  await writeFile(hook, `#!/bin/sh\ntouch ${JSON.stringify(marker)}\n`, { mode: 0o755 });
  const process = await startInHost(
    host,
    "aria2c",
    "aria2c",
    [...aria2Options(dir), "--seed-ratio=0.0", "--check-integrity=false", `--on-bt-download-complete=${hook}`, torrent],
    dir,
  );
  const completed = (async () => {
    for (;;) {
      const done = await access(marker).then(
        () => true,
        () => false,
      );
      if (done) return performance.now();
      if (process.child.exitCode !== null)
        throw new Error(`aria2c on ${host.name} exited before completing:\n${await readFile(process.logFile, "utf8").catch(() => "")}`);
      await sleep(20);
    }
  })();
  return { process, completed, output: join(dir, "blob.bin") };
}
