import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSchedulerConfig } from "./config.js";

describe("scheduler config", () => {
  it("has the documented defaults", () => {
    const config = loadSchedulerConfig({ env: {} });
    assert.equal(config.listen, "0.0.0.0:8002");
    assert.equal(config.candidateParentLimit, 4);
    assert.equal(config.maxReschedules, 5);
    assert.equal(config.scheduleTimeout, 10_000);
    assert.equal(config.topology, "affinity");
    assert.equal(config.metricsPort, 8003);
  });

  it("layers YAML < environment < flags", () => {
    const dir = mkdtempSync(join(tmpdir(), "lacewing-scheduler-"));
    const file = join(dir, "scheduler.yaml");
    writeFileSync(file, "topology: isolation\nscheduleTimeout: 30s\ncandidateParentLimit: 2\n");
    const config = loadSchedulerConfig({ file, env: { LACEWING_SCHEDULER_SCHEDULE_TIMEOUT: "5s" }, flags: { candidateParentLimit: "3" } });
    assert.equal(config.topology, "isolation");
    assert.equal(config.scheduleTimeout, 5_000);
    assert.equal(config.candidateParentLimit, 3);
  });

  it("names the bad flag", () => {
    assert.throws(() => loadSchedulerConfig({ env: {}, flags: { listen: "nowhere" } }), /invalid --listen: must be HOST:PORT/);
    assert.throws(() => loadSchedulerConfig({ env: {}, flags: { candidateParentLimit: "0" } }), /invalid --candidate-parent-limit: must be a whole number/);
    assert.throws(() => loadSchedulerConfig({ env: {}, flags: { topology: "mesh" } }), /invalid --topology: expected one of isolation, affinity/);
  });
});
