import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SchedulerEndpoints, parseSchedulerEntry, type LookupAll } from "./scheduler-endpoints.js";

const records: Partial<Record<string, Array<{ address: string; family: number }>>> = {
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

  /** Endpoints over `fakeLookup`, with clients that record whether they were closed. */
  function endpointsOf(entries: string[], onChange?: (added: string[], removed: string[]) => void) {
    const closed: string[] = [];
    const endpoints = new SchedulerEndpoints({
      entries,
      connect: (endpoint) => ({ endpoint, close: () => closed.push(endpoint) }),
      refreshMs: 3_600_000,
      retryMs: 3_600_000,
      lookup: fakeLookup,
      onChange: (change) => onChange?.(change.added, change.removed),
    });
    return { endpoints, closed };
  }

  it("counts a DNS name once per A record (IPv4 preferred), keeps literals, sorts, and reports names that do not resolve", async () => {
    const { endpoints } = endpointsOf(["scheduler.lacewing.svc:8002", "10.0.0.5:8002", "v6only.example:8002", "missing.example:8002"]);
    await endpoints.start();
    assert.deepEqual(endpoints.endpoints, ["10.0.0.11:8002", "10.0.0.12:8002", "10.0.0.5:8002", "[fd00::20]:8002"]);
    assert.deepEqual([...endpoints.unresolved], [["missing.example:8002", "ENOTFOUND"]]);
    endpoints.close();
  });

  it("keeps the addresses a name last resolved to while it does not resolve, and their clients open", async () => {
    const changes: Array<[string[], string[]]> = [];
    const { endpoints, closed } = endpointsOf(["blip.example:8002"], (added, removed) => changes.push([added, removed]));
    records["blip.example"] = [{ address: "10.0.1.1", family: 4 }];
    await endpoints.start();
    const client = endpoints.client("10.0.1.1:8002");
    delete records["blip.example"];
    await endpoints.refresh();
    assert.deepEqual(endpoints.endpoints, ["10.0.1.1:8002"], "a DNS blip does not empty the list");
    assert.deepEqual([...endpoints.unresolved], [["blip.example:8002", "ENOTFOUND"]]);
    assert.equal(endpoints.client("10.0.1.1:8002"), client, "nor drops the client");
    assert.deepEqual(closed, []);

    records["blip.example"] = [{ address: "10.0.1.2", family: 4 }];
    await endpoints.refresh();
    assert.deepEqual(endpoints.endpoints, ["10.0.1.2:8002"], "a name that answers again with other records moves");
    assert.deepEqual(endpoints.unresolved.size, 0);
    assert.deepEqual(closed, ["10.0.1.1:8002"], "the client of an endpoint no name gives any more is closed");
    assert.deepEqual(changes, [
      [["10.0.1.1:8002"], []],
      [["10.0.1.2:8002"], ["10.0.1.1:8002"]],
    ]);
    endpoints.client("10.0.1.2:8002");
    endpoints.close();
    assert.deepEqual(closed, ["10.0.1.1:8002", "10.0.1.2:8002"]);
  });

  it("resolves localhost through the system resolver", async () => {
    const endpoints = new SchedulerEndpoints({ entries: ["localhost:8002"], connect: () => ({ close: () => undefined }), refreshMs: 60_000, retryMs: 60_000 });
    await endpoints.start();
    assert.deepEqual(endpoints.endpoints, ["127.0.0.1:8002"]);
    endpoints.close();
  });
});
