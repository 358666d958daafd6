import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { silentLogger } from "@lacewing/common";
import type { DownloadSpec } from "../download/download-spec.js";
import type { DfdaemonMetrics } from "../metrics.js";
import { PieceBuffers } from "../storage/piece-buffers.js";
import type { TaskMeta } from "../storage/stored-task.js";
import { TaskStore } from "../storage/task-store.js";
import type { UploadGrants } from "../upload/upload-grants.js";
import { UploadServer, type UploadServerOptions } from "../upload/upload-server.js";

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

/** A download of `url` as dfget asks for it with no options, with `overrides` on top. */
export function downloadSpec(url: string, overrides: Partial<DownloadSpec> = {}): DownloadSpec {
  return {
    url,
    tag: "",
    application: "",
    filteredQueryParams: [],
    requestHeaders: {},
    digest: "",
    pieceLength: 0,
    outputPath: "",
    timeoutMs: 0,
    ...overrides,
  };
}

/**
 * A TaskStore in a fresh temporary directory for the specs of one describe
 * block: opened before them, closed and removed after. Read its fields in
 * the specs (they are set once `before` ran).
 */
export function tempStore(prefix: string): { readonly store: TaskStore; readonly dir: string } {
  const state = {} as { store: TaskStore; dir: string };
  before(async () => {
    state.dir = await mkdtemp(join(tmpdir(), prefix));
    state.store = new TaskStore(state.dir, silentLogger());
    await state.store.open();
  });
  after(async () => {
    await state.store.close();
    await rm(state.dir, { recursive: true, force: true });
  });
  return state;
}

/** An upload server on a free loopback port, with the limits of a small test node unless `overrides` says otherwise. */
export async function listeningUploadServer(
  store: TaskStore,
  metrics: DfdaemonMetrics,
  grants: UploadGrants,
  overrides: Partial<UploadServerOptions> = {},
): Promise<UploadServer> {
  const upload = new UploadServer({
    store,
    metrics,
    log: silentLogger(),
    limit: 4,
    rateLimit: 0,
    superSeedWindowMs: 0,
    grants,
    idleTimeoutMs: 30_000,
    buffers: new PieceBuffers(4 * 1024 * 1024),
    ...overrides,
  });
  await upload.listen("127.0.0.1", 0);
  return upload;
}
