import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ErrorCode, LacewingError } from "@lacewing/common";
import { listHf } from "./list-hf.js";
import { resolveHfFile } from "./resolve-hf-file.js";

const SHA = "0123456789abcdef0123456789abcdef01234567";

/** A hub that answers each path with what the test put there: the answers a real hub should never give, and a few it does. */
describe("hub answers that do not parse, or that mean something other than they say", () => {
  let server: Server;
  let endpoint: string;
  const routes = new Map<string, (res: ServerResponse) => void>();
  before(async () => {
    server = createServer((req, res) => {
      const route = routes.get(new URL(req.url ?? "/", "http://x").pathname);
      if (route === undefined) {
        res.writeHead(599);
        res.end();
      } else route(res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const env = () => ({ HF_ENDPOINT: endpoint });
  const json =
    (body: unknown, headers: Record<string, string> = {}) =>
    (res: ServerResponse) => {
      res.writeHead(200, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
  const code = (expected: string, message?: RegExp) => (err: unknown) =>
    err instanceof LacewingError && err.code === expected && (message === undefined || message.test(err.message));
  async function list(url: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<unknown[]> {
    const out: unknown[] = [];
    for await (const file of listHf(url, { env: { ...env(), ...extraEnv } })) out.push(file);
    return out;
  }

  it("refuses to follow a next page on another host, since the token would go with it", async () => {
    routes.set(`/api/models/o/r/tree/${SHA}`, json([], { link: '<http://elsewhere.example/api/models/o/r/tree/x?cursor=1>; rel="next"' }));
    await assert.rejects(list(`hf://o/r@${SHA}`, { HF_TOKEN: "t" }), code(ErrorCode.hubUnavailable, /another host/));
  });

  it("refuses a tree entry outside the listed directory, and one without a size", async () => {
    routes.set(`/api/models/o/r/tree/${SHA}/sub`, json([{ type: "file", path: "other/x", size: 1, oid: "a" }]));
    await assert.rejects(list(`hf://o/r/sub@${SHA}`), code(ErrorCode.hubUnavailable, /outside/));
    routes.set(`/api/models/o/r/tree/${SHA}/nosize`, json([{ type: "file", path: "nosize/x", oid: "a" }]));
    await assert.rejects(list(`hf://o/r/nosize@${SHA}`), code(ErrorCode.hubUnavailable, /size or oid/));
  });

  it("refuses revision info without a sha, and a file answer without X-Repo-Commit for a branch", async () => {
    routes.set("/api/models/o/r/revision/main", json({ id: "o/r" }));
    await assert.rejects(list("hf://o/r"), code(ErrorCode.hubUnavailable, /revision info/));
    routes.set("/o/r/resolve/main/f", (res) => {
      res.writeHead(200, { "content-length": "1" });
      res.end();
    });
    await assert.rejects(resolveHfFile("hf://o/r/f", { env: env() }), code(ErrorCode.hubUnavailable, /X-Repo-Commit/));
  });

  it("reads a 401 as a hidden repository unless the Hub says the token is invalid (huggingface_hub's rule)", async () => {
    routes.set("/o/hidden/resolve/main/f", (res) => {
      res.writeHead(401, { "x-error-message": "Repository not found" });
      res.end();
    });
    await assert.rejects(resolveHfFile("hf://o/hidden/f", { env: { ...env(), HF_TOKEN: "t" } }), code(ErrorCode.hubRepoNotFound));
    routes.set("/o/bad/resolve/main/f", (res) => {
      res.writeHead(401, { "x-error-message": "Invalid credentials in Authorization header" });
      res.end();
    });
    await assert.rejects(resolveHfFile("hf://o/bad/f", { env: { ...env(), HF_TOKEN: "t" } }), code(ErrorCode.hubAuth, /refused the token/));
  });

  it("maps a gated repository to LW_ERR_HUB_AUTH and a 5xx to a retryable LW_ERR_HUB_UNAVAILABLE", async () => {
    routes.set("/o/gated/resolve/main/f", (res) => {
      res.writeHead(403, { "x-error-code": "GatedRepo" });
      res.end();
    });
    await assert.rejects(resolveHfFile("hf://o/gated/f", { env: env() }), code(ErrorCode.hubAuth, /gated/));
    routes.set("/o/down/resolve/main/f", (res) => {
      res.writeHead(503);
      res.end();
    });
    await assert.rejects(
      resolveHfFile("hf://o/down/f", { env: env() }),
      (err: unknown) => code(ErrorCode.hubUnavailable, /503/)(err) && (err as LacewingError).details["retryable"] === true,
    );
  });

  it("gives up on a hub that does not answer, after the call's deadline", async () => {
    routes.set("/o/slow/resolve/main/f", () => undefined);
    await assert.rejects(resolveHfFile("hf://o/slow/f", { env: env(), timeoutMs: 200 }), code(ErrorCode.hubUnavailable, /did not answer within 0.2 s/));
  });

  it("follows a relative redirect (a renamed repository) but keeps the URL the user named for the download", async () => {
    routes.set("/old/r/resolve/main/f", (res) => {
      res.writeHead(307, { location: "/new/r/resolve/main/f" });
      res.end();
    });
    routes.set("/new/r/resolve/main/f", (res) => {
      res.writeHead(200, { "x-repo-commit": SHA, "content-length": "3", etag: '"abc"' });
      res.end();
    });
    const file = await resolveHfFile("hf://old/r/f", { env: env() });
    assert.equal(file.url, `${endpoint}/old/r/resolve/${SHA}/f`);
    assert.equal(file.size, 3);
  });
});
