/** The shapes of a job as it is stored and as the API returns it. */

import type { Static } from "typebox";
import {
  JOB_STATES,
  JOB_TYPES,
  PREHEAT_SCOPES,
  type HostResult as HostResultSchema,
  type PreheatArgs as PreheatArgsSchema,
  type TaskResult as TaskResultSchema,
} from "../schema/api-schemas.js";

export { JOB_STATES, JOB_TYPES, PREHEAT_SCOPES };
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];
export type JobType = (typeof JOB_TYPES)[number];
export type PreheatScope = (typeof PREHEAT_SCOPES)[number];

/** A job's args as stored (credentials split off, see job-args.ts) and shown. */
export type PreheatArgs = Static<typeof PreheatArgsSchema>;

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

export type HostResult = Static<typeof HostResultSchema>;
export type TaskResult = Static<typeof TaskResultSchema>;
export type TaskState = TaskResult["state"];

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
