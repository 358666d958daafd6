import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSchedulerEntry, resolveSchedulerEndpoints, type LookupAll } from "./scheduler-endpoints.js";

const records: Record<string, Array<{ address: string; family: number }>> = {
  "scheduler.lacewing.svc": [
    { address: "10.0.0.12", family: 4 },
    { address: "10.0.0.11", family: 4 },
    { address: "fd00::11", family: 6 },
  ],
  "v6only.example": [{ address: "fd00::20", family: 6 }],
};
const fakeLookup: LookupAll = async (host) => {
  const found = records[host];
  if (found === undefined) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
  return found;
};

describe("scheduler endpoints", () => {
  it("parses HOST:PORT, [v6]:PORT and rejects anything else", () => {
    assert.deepEqual(parseSchedulerEntry("10.0.0.1:8002"), { host: "10.0.0.1", port: 8002 });
    assert.deepEqual(parseSchedulerEntry("[fd00::1]:8002"), { host: "fd00::1", port: 8002 });
    assert.deepEqual(parseSchedulerEntry("scheduler.lacewing.svc:8002"), { host: "scheduler.lacewing.svc", port: 8002 });
    for (const bad of ["scheduler", "host:0", "host:99999", ":8002", "host:port"]) assert.throws(() => parseSchedulerEntry(bad), /is not HOST:PORT/, bad);
  });

  it("counts a DNS name once per A record (IPv4 preferred), keeps literals, sorts, and reports names that do not resolve", async () => {
    const entries = ["scheduler.lacewing.svc:8002", "10.0.0.5:8002", "v6only.example:8002", "missing.example:8002"].map(parseSchedulerEntry);
    const { endpoints, unresolved } = await resolveSchedulerEndpoints(entries, fakeLookup);
    assert.deepEqual(endpoints, ["10.0.0.11:8002", "10.0.0.12:8002", "10.0.0.5:8002", "[fd00::20]:8002"]);
    assert.deepEqual([...unresolved], [["missing.example:8002", "ENOTFOUND"]]);
  });

  it("resolves localhost through the system resolver", async () => {
    const { endpoints } = await resolveSchedulerEndpoints([parseSchedulerEntry("localhost:8002")]);
    assert.deepEqual(endpoints, ["127.0.0.1:8002"]);
  });
});
