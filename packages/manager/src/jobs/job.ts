/** The shapes of a job as it is stored and as the API returns it. */

export const JOB_STATES = ["pending", "running", "succeeded", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];

export const JOB_TYPES = ["preheat"] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const PREHEAT_SCOPES = ["single_seed_peer", "all_seed_peers", "all_peers"] as const;
export type PreheatScope = (typeof PREHEAT_SCOPES)[number];

export interface PreheatArgs {
  type: "image" | "file";
  /** Image: the manifest URL. File: one URL per task. */
  urls: string[];
  tag: string;
  application: string;
  filteredQueryParams: string[];
  headers: Record<string, string>;
  username: string;
  password: string;
  platform: string;
  scope: PreheatScope;
}

/**
 * Credentials kept apart from the args the API shows, in the `secrets`
 * column. Every field may be missing: the column is emptied when the job
 * reaches a final state, and rows written before a field existed lack it.
 */
export interface JobSecrets {
  password?: string;
  /** Every header's real value (all header values are treated as credentials). */
  headers?: Record<string, string>;
  /** The URLs as given, with their userinfo and signed query parameters. */
  urls?: string[];
}

export type TaskState = "pending" | "running" | "succeeded" | "failed";

export interface HostResult {
  hostId: string;
  hostname: string;
  ip: string;
  success: boolean;
  description: string;
}

export interface TaskResult {
  taskId: string;
  url: string;
  digest: string;
  state: TaskState;
  error: string;
  /** The scheduler that owns the task. */
  scheduler: string;
  hosts: HostResult[];
}

export interface Job {
  id: string;
  type: JobType;
  state: JobState;
  /** Credentials redacted: password, header values, URL userinfo and signed query values read "[redacted]". */
  args: PreheatArgs;
  progress: { done: number; total: number };
  tasks: TaskResult[];
  error: string;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function progressOf(tasks: readonly TaskResult[]): { done: number; total: number } {
  return { done: tasks.filter((t) => t.state === "succeeded" || t.state === "failed").length, total: tasks.length };
}
