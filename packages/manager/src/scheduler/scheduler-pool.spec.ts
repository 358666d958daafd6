import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rendezvousPick, type LookupAll } from "@lacewing/common";
import { SchedulerPool } from "./scheduler-pool.js";

const lookup: LookupAll = async (host) => {
  if (host === "lacewing-scheduler.lacewing.svc.cluster.local")
    return [
      { address: "10.0.0.12", family: 4 },
      { address: "10.0.0.11", family: 4 },
    ];
  throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
};

describe("manager SchedulerPool", () => {
  it("hashes tasks over every address a headless Service name resolves to, as the daemons do", async () => {
    const pool = new SchedulerPool(["lacewing-scheduler.lacewing.svc.cluster.local:8002"], { lookup, security: { mode: "insecure" } });
    await pool.start();
    try {
      assert.deepEqual(pool.endpoints, ["10.0.0.11:8002", "10.0.0.12:8002"]);
      const owners = new Set<string>();
      for (let i = 0; i < 32; i++) {
        const taskId = `task-${i}`;
        assert.equal(pool.ownerOf(taskId), rendezvousPick(taskId, ["10.0.0.11:8002", "10.0.0.12:8002"]));
        owners.add(pool.ownerOf(taskId));
      }
      assert.equal(owners.size, 2, "tasks are spread over both replicas");
    } finally {
      pool.close();
    }
  });

  it("reports a name that does not resolve in listHosts and names it when no scheduler is left", async () => {
    const pool = new SchedulerPool(["missing.example:8002"], { lookup, security: { mode: "insecure" } });
    await pool.start();
    try {
      const { schedulers } = await pool.listHosts(100);
      assert.deepEqual(schedulers, [{ address: "missing.example:8002", reachable: false, error: "cannot resolve: ENOTFOUND", hostCount: 0 }]);
      assert.throws(() => pool.ownerOf("t"), /no scheduler address resolves: missing\.example:8002/);
    } finally {
      pool.close();
    }
  });

  it("rejects an entry that is not HOST:PORT at construction", () => {
    assert.throws(() => new SchedulerPool(["scheduler"], { security: { mode: "insecure" } }), /is not HOST:PORT/);
  });
});
