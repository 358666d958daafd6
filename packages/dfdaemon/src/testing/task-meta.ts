import type { TaskMeta } from "../storage/stored-task.js";

/**
 * A task's metadata for specs: a new, unfinished task of unknown length
 * whose URL is named after its id, with `overrides` on top.
 */
export function taskMeta(overrides: Partial<TaskMeta> = {}): TaskMeta {
  const taskId = overrides.taskId ?? "task";
  return {
    taskId,
    url: `http://origin.test/${taskId}`,
    contentLength: -1,
    pieceLength: 0,
    digest: "",
    finished: false,
    createdAt: 0,
    lastAccessedAt: 0,
    ...overrides,
  };
}
