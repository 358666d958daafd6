import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Counter, Registry } from "prom-client";
import { MetricsServer } from "./metrics-server.js";

describe("MetricsServer", () => {
  const registry = new Registry();
  const counter = new Counter({ name: "lacewing_test_things_total", help: "things", registers: [registry] });
  let ready = false;
  const server = new MetricsServer(registry, () => ready);
  after(() => server.close());

  it("answers /readyz 503 until the process says it is ready, then 200; /healthz is 200 throughout", async () => {
    const port = await server.listen("127.0.0.1", 0);
    const status = async (path: string): Promise<number> => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    assert.equal(await status("/healthz"), 200);
    assert.equal(await status("/readyz"), 503);
    ready = true;
    assert.equal(await status("/readyz"), 200);
    assert.equal(await status("/healthz?verbose"), 200);
    ready = false;
    assert.equal(await status("/readyz"), 503, "not ready again while shutting down");
  });

  it("serves the registry in the Prometheus text format, and 404/405 for anything else", async () => {
    counter.inc(3);
    const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), registry.contentType);
    assert.match(await response.text(), /^lacewing_test_things_total 3$/m);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/other`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST" })).status, 405);
  });
});
