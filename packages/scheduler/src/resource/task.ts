import type { Download } from "@lacewing/api";
import { pieceCountOf, pieceGeometryProblem } from "@lacewing/common";
import type { Peer } from "./peer.js";

/** Piece cost totals of one parent within one task. */
export interface ParentCost {
  bytes: number;
  costMs: number;
  samples: number;
}

/** Where the one seed download of a task stands. */
export interface SeedTriggerState {
  hostId: string;
  state: "pending" | "accepted" | "failed";
  at: number;
}

/** What a watcher of a task hears: its length or digest source became known, or a piece's digest did. */
export type TaskChange = { kind: "info" } | { kind: "digest"; number: number };

/**
 * What makes a task a persistent cache task (dfcache): content without an
 * origin, kept on `replicas` hosts until `expiresAt`.
 */
export interface PersistentTaskState {
  replicas: number;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  ttlMs: number;
  /** Hosts ordered to download a replica, with when: counted as holders until they finish or the order times out. */
  readonly placements: Map<string, number>;
}

/** A task: one piece of content, however many peers download it. */
export interface Task {
  readonly id: string;
  /** From the first registration, for operators. Seeds are triggered with the registering child's own download. */
  url: string;
  tag: string;
  application: string;
  filteredQueryParams: string[];
  /** The content digest downloads expect ("sha256:…"); the first one given wins. */
  digest: string;
  /** -1 while unknown. Set once, by the first peer that fetched from the origin (see recordGeometry). */
  contentLength: number;
  /** 0 while unknown. */
  pieceLength: number;
  /** 0 while unknown. */
  totalPieces: number;
  /**
   * SHA-256 of each piece as the peer that fetched it from the origin
   * reported it; the first report wins. Children verify against these.
   */
  readonly pieceDigests: Map<number, Buffer>;
  /** The peer whose origin fetch (or cache) the first digests came from; children may verify with its digests directly. */
  digestSource: string | undefined;
  readonly peers: Map<string, Peer>;
  /**
   * The seed peer triggered for the task, by source zone (see
   * scheduling/source-zone.ts): one per zone that is its own source, "" for
   * the rest of the cluster.
   */
  readonly seedTriggers: Map<string, SeedTriggerState>;
  /** The one peer told to go back to source when no seed peer could be used, by source zone. */
  readonly backToSourcePeers: Map<string, string>;
  readonly parentCosts: Map<string, ParentCost>;
  /** Parents whose piece costs are outliers: ranked last, dropped when others exist. */
  readonly badParents: Set<string>;
  /** Parents a child caught serving a piece that failed its digest: never handed out for this task again. */
  readonly excludedParents: Set<string>;
  /**
   * Hosts whose copy of the task failed the task's digest (or who served it
   * to a peer whose copy did): not taken as parents or complete holders of
   * the task again until they delete it.
   */
  readonly taintedHosts: Set<string>;
  /** A peer found the whole task did not match its digest: the next download fetches from the origin itself. */
  tainted: boolean;
  /** Callbacks of peers waiting for the task to change (a new holder, a new piece). */
  readonly waiters: Set<() => void>;
  /** Streams to tell what the task learns (see TaskChange). */
  readonly watchers: Set<(change: TaskChange) => void>;
  createdAt: number;
  /** Set for a persistent cache task (dfcache import); such a task never goes back to source. */
  persistent: PersistentTaskState | undefined;
}

export function newTask(id: string, download: Download, now: number): Task {
  return {
    id,
    url: download.url,
    tag: download.tag,
    application: download.application,
    filteredQueryParams: [...download.filteredQueryParams],
    digest: download.digest,
    contentLength: -1,
    pieceLength: 0,
    totalPieces: 0,
    pieceDigests: new Map(),
    digestSource: undefined,
    peers: new Map(),
    seedTriggers: new Map(),
    backToSourcePeers: new Map(),
    parentCosts: new Map(),
    badParents: new Set(),
    excludedParents: new Set(),
    taintedHosts: new Set(),
    tainted: false,
    waiters: new Set(),
    watchers: new Set(),
    createdAt: now,
    persistent: undefined,
  };
}

/** A later registration only fills in what the task does not know yet; it never replaces what it does. */
export function updateTaskDownload(task: Task, download: Download): void {
  if (task.url === "" && download.url !== "") {
    task.url = download.url;
    task.tag = download.tag;
    task.application = download.application;
    task.filteredQueryParams = [...download.filteredQueryParams];
  }
  if (task.digest === "" && download.digest !== "") task.digest = download.digest;
}

export function lengthKnown(task: Task): boolean {
  return task.contentLength >= 0 && task.pieceLength > 0;
}

/**
 * Takes a content length and piece length from a peer the scheduler trusts
 * with it (one that fetched from the origin). The first one wins: a report
 * that disagrees is an error, never an overwrite. Returns the problem, or
 * undefined when the task now has (or already had) this geometry.
 */
export function recordGeometry(task: Task, contentLength: number, pieceLength: number): string | undefined {
  if (lengthKnown(task)) {
    if (task.contentLength === contentLength && task.pieceLength === pieceLength) return undefined;
    return `the task has ${task.contentLength} bytes in ${task.pieceLength}-byte pieces, not ${contentLength} in ${pieceLength}`;
  }
  if (contentLength < 0) return undefined;
  const problem = pieceGeometryProblem(contentLength, pieceLength);
  if (problem !== undefined) return problem;
  task.contentLength = contentLength;
  task.pieceLength = pieceLength;
  task.totalPieces = pieceCountOf(contentLength, pieceLength);
  notifyWatchers(task, { kind: "info" });
  return undefined;
}

/**
 * Records a piece's digest from `peerId`'s origin fetch (or cache): "new",
 * "same", or "conflict" when another digest was recorded first. The first
 * peer to report one becomes the task's digest source.
 */
export function recordPieceDigest(task: Task, number: number, sha256: Buffer, peerId: string): "new" | "same" | "conflict" {
  const known = task.pieceDigests.get(number);
  if (known !== undefined) return known.equals(sha256) ? "same" : "conflict";
  task.pieceDigests.set(number, Buffer.from(sha256));
  if (task.digestSource === undefined) {
    task.digestSource = peerId;
    notifyWatchers(task, { kind: "info" });
  }
  notifyWatchers(task, { kind: "digest", number });
  return "new";
}

/**
 * Forgets what the task's content was believed to be, after a peer found
 * the whole of it did not match its digest: the length, the digests and the
 * peers holding copies (their hosts are tainted for the task). The next
 * peer to register is sent to the origin.
 */
export function taintTask(task: Task, holders: Iterable<Peer>): void {
  task.tainted = true;
  task.contentLength = -1;
  task.pieceLength = 0;
  task.totalPieces = 0;
  task.pieceDigests.clear();
  task.digestSource = undefined;
  task.seedTriggers.clear();
  task.backToSourcePeers.clear();
  for (const peer of holders) task.taintedHosts.add(peer.hostId);
}

function notifyWatchers(task: Task, change: TaskChange): void {
  for (const watch of [...task.watchers]) watch(change);
}

/** Wakes every peer waiting on the task; they re-run scheduling. */
export function notifyTaskChanged(task: Task): void {
  for (const wake of [...task.waiters]) wake();
}

/**
 * Resolves "changed" at the next notifyTaskChanged, "timeout" after `ms`, or
 * "aborted" when `signal` aborts.
 */
export function waitForTaskChange(task: Task, ms: number, signal: AbortSignal): Promise<"changed" | "timeout" | "aborted"> {
  if (signal.aborted) return Promise.resolve("aborted");
  return new Promise((resolve) => {
    const finish = (result: "changed" | "timeout" | "aborted"): void => {
      clearTimeout(timer);
      task.waiters.delete(wake);
      signal.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const wake = (): void => finish("changed");
    const onAbort = (): void => finish("aborted");
    const timer = setTimeout(() => finish("timeout"), Math.max(0, ms));
    task.waiters.add(wake);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Whether `peerId` is a peer told to go back to source for the task (in any zone). */
export function isBackToSourcePeer(task: Task, peerId: string): boolean {
  for (const id of task.backToSourcePeers.values()) if (id === peerId) return true;
  return false;
}

/** `peerId` no longer fetches the task from the origin for its zone (it finished, failed or left). */
export function forgetBackToSourcePeer(task: Task, peerId: string): void {
  for (const [zone, id] of task.backToSourcePeers) if (id === peerId) task.backToSourcePeers.delete(zone);
}
