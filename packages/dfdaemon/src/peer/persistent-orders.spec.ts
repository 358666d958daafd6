import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, dfdaemonv1, type CallContext } from "@lacewing/api";
import { ErrorCode, silentLogger, type Role } from "@lacewing/common";
import type { TaskManager } from "../download/task-manager.js";
import type { PersistentCache } from "../persistent/persistent-cache.js";
import type { TaskStore } from "../storage/task-store.js";
import { UploadGrants } from "../upload/upload-grants.js";
import { peerService } from "./peer-service.js";

const TASK_ID = "d".repeat(64);

function contextOf(role: Role): CallContext {
  return {
    signal: new AbortController().signal,
    secure: true,
    caller: { role, name: "", subject: `lacewing:${role}` },
    peer: "127.0.0.1:1",
  } as unknown as CallContext;
}

/** The peer service over a PersistentCache that records the orders it is given. */
function serviceWithOrders() {
  const orders: string[] = [];
  const persistent = {
    placeReplica: (taskId: string) => void orders.push(`place ${taskId}`),
    deleteOrdered: (taskId: string) => {
      orders.push(`delete ${taskId}`);
      return true;
    },
  } as unknown as PersistentCache;
  const service = peerService({ store: {} as TaskStore, tasks: {} as TaskManager, grants: new UploadGrants(0), log: silentLogger(), persistent }, new Set());
  return { service, orders };
}

const denied = (err: unknown): boolean => err instanceof Error && "code" in err && err.code === ErrorCode.permissionDenied;

describe("DfdaemonPeer: a scheduler's orders about persistent cache tasks", () => {
  it("only a scheduler may order a replica or a deletion; a peer, a seed or the manager is refused and nothing happens", async () => {
    const { service, orders } = serviceWithOrders();
    const trigger = create(dfdaemonv1.TriggerDownloadRequestSchema, {
      persistentTaskId: TASK_ID,
      persistent: { replicas: 2, expiresAtMs: BigInt(Date.now() + 60_000), ttlMs: 60_000n },
    });
    const remove = create(dfdaemonv1.DeletePersistentTaskRequestSchema, { taskId: TASK_ID });
    for (const role of ["peer", "seed", "manager"] as const) {
      await assert.rejects(
        Promise.resolve().then(() => service.triggerDownload(trigger, contextOf(role))),
        denied,
        role,
      );
      await assert.rejects(
        Promise.resolve().then(() => service.deletePersistentTask(remove, contextOf(role))),
        denied,
        role,
      );
    }
    assert.deepEqual(orders, []);
    assert.deepEqual(await service.triggerDownload(trigger, contextOf("scheduler")), { taskId: TASK_ID, finished: false, description: "accepted" });
    assert.deepEqual(await service.deletePersistentTask(remove, contextOf("scheduler")), { held: true });
    assert.deepEqual(orders, [`place ${TASK_ID}`, `delete ${TASK_ID}`]);
  });
});
