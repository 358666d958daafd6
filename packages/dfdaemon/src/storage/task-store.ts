import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@lacewing/common";
import { StoredTask, storageError, type Reserve, type TaskMeta } from "./stored-task.js";

export interface TaskStoreOptions {
  /** False empties the store at open and at close (no cache across restarts). Default true. */
  keep?: boolean;
  /** Asked before a task grows to its known length; see `Reserve`. */
  reserve?: Reserve;
}

/** A task counted in as a reader; `release` counts it out. */
export interface TaskLease {
  task: StoredTask;
  release: () => void;
}

/** All tasks under `<dataDir>/tasks`, loaded at start-up. */
export class TaskStore {
  readonly root: string;
  readonly #tasks = new Map<string, StoredTask>();
  /** Directories still being removed, so a new task with the same id waits for them. */
  readonly #removing = new Map<string, Promise<void>>();
  readonly #log: Logger;
  readonly #options: TaskStoreOptions;

  constructor(dataDir: string, log: Logger, options: TaskStoreOptions = {}) {
    this.root = join(dataDir, "tasks");
    this.#log = log;
    this.#options = options;
  }

  async open(): Promise<void> {
    if (this.#options.keep === false) await rm(this.root, { recursive: true, force: true });
    await mkdir(this.root, { recursive: true });
    for (const name of await readdir(this.root)) {
      try {
        const task = await StoredTask.load(join(this.root, name), this.#options.reserve);
        this.#tasks.set(task.taskId, task);
      } catch (err) {
        this.#log.warn({ taskId: name, err }, "dropping unreadable task directory");
        await rm(join(this.root, name), { recursive: true, force: true });
      }
    }
    this.#log.info({ tasks: this.#tasks.size }, "task store loaded");
  }

  get(taskId: string): StoredTask | undefined {
    return this.#tasks.get(taskId);
  }

  /**
   * Looks the task up and counts a reader in, in one synchronous step, so an
   * eviction cannot slip in between. Undefined if the task is not stored.
   */
  acquire(taskId: string): TaskLease | undefined {
    const task = this.#tasks.get(taskId);
    const release = task?.acquire();
    return task && release ? { task, release } : undefined;
  }

  all(): StoredTask[] {
    return [...this.#tasks.values()];
  }

  async create(meta: TaskMeta): Promise<StoredTask> {
    await this.#removing.get(meta.taskId);
    const dir = join(this.root, meta.taskId);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw storageError(err, "cannot create task directory");
    }
    const task = await StoredTask.create(dir, meta, this.#options.reserve);
    this.#tasks.set(meta.taskId, task);
    return task;
  }

  /**
   * Removes a task. It leaves the map and is marked closed synchronously,
   * before the first await: a caller that checked it was idle in the same
   * tick knows no reader found it meanwhile.
   */
  delete(taskId: string): Promise<void> {
    const task = this.#tasks.get(taskId);
    this.#tasks.delete(taskId);
    const closing = task?.close() ?? Promise.resolve();
    const removal = (async () => {
      await this.#removing.get(taskId);
      await closing;
      await rm(join(this.root, taskId), { recursive: true, force: true });
    })();
    const tracked = removal.catch(() => undefined);
    this.#removing.set(taskId, tracked);
    void tracked.then(() => {
      if (this.#removing.get(taskId) === tracked) this.#removing.delete(taskId);
    });
    return removal;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#tasks.values()].map((t) => t.close()));
    await Promise.all(this.#removing.values());
    if (this.#options.keep === false) await rm(this.root, { recursive: true, force: true });
  }
}
