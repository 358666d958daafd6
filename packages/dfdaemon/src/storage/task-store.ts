import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@lacewing/common";
import { StoredTask, storageError, type TaskMeta } from "./stored-task.js";

/** All tasks under `<dataDir>/tasks`, loaded at start-up. */
export class TaskStore {
  readonly #root: string;
  readonly #tasks = new Map<string, StoredTask>();
  readonly #log: Logger;

  constructor(dataDir: string, log: Logger) {
    this.#root = join(dataDir, "tasks");
    this.#log = log;
  }

  async open(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
    for (const name of await readdir(this.#root)) {
      try {
        const task = await StoredTask.load(join(this.#root, name));
        this.#tasks.set(task.taskId, task);
      } catch (err) {
        this.#log.warn({ taskId: name, err }, "dropping unreadable task directory");
        await rm(join(this.#root, name), { recursive: true, force: true });
      }
    }
    this.#log.info({ tasks: this.#tasks.size }, "task store loaded");
  }

  get(taskId: string): StoredTask | undefined {
    return this.#tasks.get(taskId);
  }

  all(): StoredTask[] {
    return [...this.#tasks.values()];
  }

  async create(meta: TaskMeta): Promise<StoredTask> {
    const dir = join(this.#root, meta.taskId);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw storageError(err, "cannot create task directory");
    }
    const task = await StoredTask.create(dir, meta);
    this.#tasks.set(meta.taskId, task);
    return task;
  }

  async delete(taskId: string): Promise<void> {
    const task = this.#tasks.get(taskId);
    this.#tasks.delete(taskId);
    await task?.close();
    await rm(join(this.#root, taskId), { recursive: true, force: true });
  }

  async close(): Promise<void> {
    await Promise.all([...this.#tasks.values()].map((t) => t.close()));
  }
}
