import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULTS } from "./defaults.js";

describe("DEFAULTS", () => {
  it("gives every process distinct valid ports", () => {
    const ports = [
      DEFAULTS.scheduler.port,
      DEFAULTS.scheduler.metricsPort,
      DEFAULTS.dfdaemon.peerPort,
      DEFAULTS.dfdaemon.uploadPort,
      DEFAULTS.dfdaemon.proxyPort,
      DEFAULTS.dfdaemon.metricsPort,
      DEFAULTS.manager.port,
      DEFAULTS.manager.grpcPort,
    ];
    assert.equal(new Set(ports).size, ports.length);
    for (const port of ports) assert.ok(Number.isInteger(port) && port > 0 && port < 65536);
  });

  it("uses absolute paths for the dfdaemon socket and data dir", () => {
    assert.ok(DEFAULTS.dfdaemon.socket.startsWith("/"));
    assert.ok(DEFAULTS.dfdaemon.dataDir.startsWith("/"));
  });
});
