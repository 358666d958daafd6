import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLogger, silentLogger } from "./logger.js";

const SECRET = "s3cr3t-do-not-log";

/** A destination that collects written lines. */
function collector(): { stream: Writable; text: () => string; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const text = () => chunks.join("");
  return {
    stream,
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe("createLogger", () => {
  it("writes JSON lines with name, level and fields to the given destination", () => {
    const out = collector();
    const log = createLogger({ name: "dfdaemon", destination: out.stream });
    log.info({ taskId: "t1" }, "download started");
    const [line] = out.lines();
    assert.equal(line?.["name"], "dfdaemon");
    assert.equal(line?.["level"], 30);
    assert.equal(line?.["taskId"], "t1");
    assert.equal(line?.["msg"], "download started");
    assert.equal(line?.["pid"], process.pid);
  });

  it("honours the level", () => {
    const out = collector();
    const log = createLogger({ name: "x", level: "warn", destination: out.stream });
    log.info("hidden");
    log.warn("shown");
    assert.deepEqual(
      out.lines().map((l) => l["msg"]),
      ["shown"],
    );
  });

  it("censors Authorization, Proxy-Authorization and cookie headers at the top level and one level down", () => {
    const out = collector();
    const log = createLogger({ name: "x", destination: out.stream });
    log.info({ headers: { authorization: `Bearer ${SECRET}`, Cookie: SECRET, accept: "*/*" } }, "a");
    log.info({ headers: { Authorization: `Basic ${SECRET}` } }, "b");
    log.info({ req: { headers: { authorization: `Bearer ${SECRET}`, cookie: SECRET } } }, "c");
    log.info({ upstream: { headers: { Authorization: SECRET } } }, "d");
    log.info({ headers: { "proxy-authorization": SECRET }, res: { headers: { "Proxy-Authorization": SECRET } } }, "e");
    assert.ok(!out.text().includes(SECRET), out.text());
    const [a] = out.lines();
    assert.deepEqual(a?.["headers"], { authorization: "[redacted]", Cookie: "[redacted]", accept: "*/*" });
  });

  it("censors requestHeaders wholesale", () => {
    const out = collector();
    const log = createLogger({ name: "x", destination: out.stream });
    log.info({ requestHeaders: { "x-api-key": SECRET } }, "top");
    log.info({ preheat: { requestHeaders: { "x-api-key": SECRET } } }, "nested");
    assert.ok(!out.text().includes(SECRET), out.text());
    assert.equal(out.lines()[0]?.["requestHeaders"], "[redacted]");
  });

  it("censors password and token fields", () => {
    const out = collector();
    const log = createLogger({ name: "x", destination: out.stream });
    log.info({ password: SECRET, token: SECRET }, "top");
    log.info({ registry: { password: SECRET, token: SECRET, user: "alice" } }, "nested");
    assert.ok(!out.text().includes(SECRET), out.text());
    assert.ok(out.text().includes("alice"), "non-secret fields stay");
  });

  it("censors secrets in child logger bindings", () => {
    const out = collector();
    const log = createLogger({ name: "x", destination: out.stream }).child({ token: SECRET });
    log.info("bound");
    assert.ok(out.text().includes("bound"));
    assert.ok(!out.text().includes(SECRET), out.text());
  });
});

describe("silentLogger", () => {
  it("is disabled at every level", () => {
    const log = silentLogger();
    assert.equal(log.isLevelEnabled("fatal"), false);
    assert.equal(log.isLevelEnabled("info"), false);
  });
});
