import type { Download } from "@lacewing/api";
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

/** A task: one piece of content, however many peers download it. */
export interface Task {
  readonly id: string;
  url: string;
  tag: string;
  application: string;
  filteredQueryParams: string[];
  digest: string;
  /**
   * Origin request headers from the latest registration, kept only in memory
   * so a triggered seed peer can fetch with the same credentials. Never logged.
   */
  requestHeaders: Record<string, string>;
  /** -1 while unknown. */
  contentLength: number;
  /** 0 while unknown. */
  pieceLength: number;
  /** 0 while unknown. */
  totalPieces: number;
  readonly peers: Map<string, Peer>;
  seedTrigger: SeedTriggerState | undefined;
  /** The one peer told to go back to source when no seed peer could be used. */
  backToSourcePeerId: string | undefined;
  readonly parentCosts: Map<string, ParentCost>;
  /** Parents whose piece costs are outliers: ranked last, dropped when others exist. */
  readonly badParents: Set<string>;
  /** Children that received a corrupt piece, by parent. */
  readonly corruptReports: Map<string, Set<string>>;
  /** Callbacks of peers waiting for the task to change (a new holder, a new piece). */
  readonly waiters: Set<() => void>;
  createdAt: number;
}

export function newTask(id: string, download: Download, now: number): Task {
  const task: Task = {
    id,
    url: "",
    tag: "",
    application: "",
    filteredQueryParams: [],
    digest: "",
    requestHeaders: {},
    contentLength: -1,
    pieceLength: 0,
    totalPieces: 0,
    peers: new Map(),
    seedTrigger: undefined,
    backToSourcePeerId: undefined,
    parentCosts: new Map(),
    badParents: new Set(),
    corruptReports: new Map(),
    waiters: new Set(),
    createdAt: now,
  };
  updateTaskDownload(task, download);
  return task;
}

/** Keeps the latest description of what the task is. */
export function updateTaskDownload(task: Task, download: Download): void {
  if (download.url !== "") {
    task.url = download.url;
    task.tag = download.tag;
    task.application = download.application;
    task.filteredQueryParams = [...download.filteredQueryParams];
  }
  if (download.digest !== "") task.digest = download.digest;
  if (download.pieceLength > 0n && task.pieceLength === 0) task.pieceLength = Number(download.pieceLength);
  if (Object.keys(download.requestHeaders).length > 0) task.requestHeaders = { ...download.requestHeaders };
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

/** The download description a triggered peer is given. */
export function downloadOfTask(task: Task): {
  url: string;
  tag: string;
  application: string;
  filteredQueryParams: string[];
  requestHeaders: Record<string, string>;
  digest: string;
  pieceLength: bigint;
} {
  return {
    url: task.url,
    tag: task.tag,
    application: task.application,
    filteredQueryParams: [...task.filteredQueryParams],
    requestHeaders: { ...task.requestHeaders },
    digest: task.digest,
    pieceLength: BigInt(task.pieceLength),
  };
}
