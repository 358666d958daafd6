import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LacewingError, createCertificateAuthority, issueCertificate, tlsMaterialOf, type ErrorKind, type Role, type Security } from "@lacewing/common";
import { EchoService, type EchoRequest } from "../gen/lacewing/testing/v1/echo_pb.js";
import { requireRole } from "./authorize.js";
import { createClient, type RpcClient } from "./client.js";
import { RpcServer } from "./server.js";
import type { CallContext } from "./types.js";
import { GrpcStatus, RpcError } from "./status.js";

function maybeFail(request: EchoRequest, context: CallContext): void {
  if (request.failKind === "secret") throw new Error("database password is hunter2");
  if (request.failKind === "require-manager") requireRole(context, ["manager"], "echo");
  else if (request.failKind) throw new LacewingError("LW_ERR_INTERNAL", request.failKind as ErrorKind, `failed as ${request.failKind}`);
}

const ca = createCertificateAuthority();
/** TLS material of a cluster process with `role`, signed by `authority`. */
function tlsAs(role: Role, name = "", authority = ca): Security {
  const issued = issueCertificate(authority, { role, name });
  return { mode: "tls", material: tlsMaterialOf({ ca: authority.certPem, cert: issued.certPem, key: issued.keyPem }, role) };
}

describe("grpc-js adapter over a real socket", () => {
  const server = new RpcServer({ security: tlsAs("scheduler", "sched-1") });
  let port = 0;
  let client: RpcClient<typeof EchoService>;
  let cancelledOnServer: () => void = () => undefined;
  const serverSawCancel = new Promise<void>((resolve) => (cancelledOnServer = resolve));

  before(async () => {
    server.add(EchoService, {
      async echo(request, context) {
        maybeFail(request, context);
        if (request.text === "whoami") return { text: `${context.caller?.subject ?? "nobody"} secure=${context.secure}`, index: 0 };
        if (request.delayMs) await sleep(request.delayMs, undefined, { signal: context.signal }).catch(() => cancelledOnServer());
        return { text: request.text, index: 0 };
      },
      async *echoMany(request, context) {
        maybeFail(request, context);
        for (let i = 0; i < request.repeat; i++) {
          if (request.delayMs) await sleep(request.delayMs);
          if (context.signal.aborted) return;
          yield { text: request.text, index: i };
        }
      },
      async collect(requests, context) {
        const texts: string[] = [];
        for await (const request of requests) {
          maybeFail(request, context);
          texts.push(request.text);
        }
        return { text: texts.join(","), index: texts.length };
      },
      async *chat(requests, context) {
        let index = 0;
        for await (const request of requests) {
          maybeFail(request, context);
          yield { text: request.text.toUpperCase(), index: index++ };
        }
      },
    });
    port = await server.listen("127.0.0.1:0");
    client = createClient(EchoService, `127.0.0.1:${port}`, { security: tlsAs("peer", "node-1"), serverRoles: ["scheduler"] });
  });

  after(async () => {
    client.close();
    await server.close();
  });

  it("unary call returns the typed response", async () => {
    const response = await client.echo({ text: "hello" });
    assert.equal(response.text, "hello");
  });

  it("server streaming yields every message in order", async () => {
    const got: number[] = [];
    for await (const message of client.echoMany({ text: "x", repeat: 5 })) got.push(message.index);
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
  });

  it("client streaming collects every request", async () => {
    async function* requests(): AsyncIterable<{ text: string }> {
      yield { text: "a" };
      yield { text: "b" };
      yield { text: "c" };
    }
    const response = await client.collect(requests());
    assert.equal(response.text, "a,b,c");
    assert.equal(response.index, 3);
  });

  it("bidi streaming answers each request as it arrives", async () => {
    async function* requests(): AsyncIterable<{ text: string }> {
      yield { text: "one" };
      yield { text: "two" };
    }
    const got: string[] = [];
    for await (const message of client.chat(requests())) got.push(message.text);
    assert.deepEqual(got, ["ONE", "TWO"]);
  });

  it("maps a Lacewing error kind to its gRPC status and keeps the stable code", async () => {
    await assert.rejects(client.echo({ text: "x", failKind: "not_found" }), (err: unknown) => {
      assert.ok(err instanceof RpcError);
      assert.equal(err.status, GrpcStatus.NOT_FOUND);
      assert.equal(err.code, "LW_ERR_INTERNAL");
      assert.equal(err.kind, "not_found");
      assert.equal(err.message, "failed as not_found");
      return true;
    });
  });

  it("never puts an unexpected error's message on the wire", async () => {
    await assert.rejects(client.echo({ text: "x", failKind: "secret" }), (err: unknown) => {
      assert.ok(err instanceof RpcError);
      assert.equal(err.status, GrpcStatus.INTERNAL);
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
  });

  it("reports an error thrown inside a server stream", async () => {
    const stream = client.echoMany({ text: "x", repeat: 2, failKind: "invalid_argument" });
    await assert.rejects(
      (async () => {
        for await (const _ of stream) void _;
      })(),
      (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.INVALID_ARGUMENT,
    );
  });

  it("a deadline fails the call with DEADLINE_EXCEEDED", async () => {
    await assert.rejects(
      client.echo({ text: "x", delayMs: 2_000 }, { timeoutMs: 50 }),
      (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.DEADLINE_EXCEEDED,
    );
  });

  it("aborting the signal cancels the call on both sides", async () => {
    const controller = new AbortController();
    const call = client.echo({ text: "x", delayMs: 5_000 }, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await assert.rejects(call, (err: unknown) => err instanceof RpcError && err.status === GrpcStatus.CANCELLED);
    await serverSawCancel;
  });

  it("breaking out of a server stream early stops it", async () => {
    let seen = 0;
    for await (const _ of client.echoMany({ text: "x", repeat: 1000, delayMs: 1 })) {
      if (++seen === 3) break;
    }
    assert.equal(seen, 3);
    // The channel still works afterwards.
    assert.equal((await client.echo({ text: "after" })).text, "after");
  });

  it("a call to a server that is not there fails with UNAVAILABLE", async () => {
    const lonely = createClient(EchoService, "127.0.0.1:1", { security: { mode: "insecure" }, serverRoles: [] });
    try {
      await assert.rejects(
        lonely.echo({ text: "x" }, { timeoutMs: 2_000 }),
        (err: unknown) => err instanceof RpcError && (err.status === GrpcStatus.UNAVAILABLE || err.status === GrpcStatus.DEADLINE_EXCEEDED),
      );
    } finally {
      lonely.close();
    }
  });

  it("a handler sees the caller's role and name from its client certificate", async () => {
    assert.equal((await client.echo({ text: "whoami" })).text, "lacewing:peer:node-1 secure=true");
  });

  it("requireRole refuses a caller of another role with PERMISSION_DENIED", async () => {
    await assert.rejects(client.echo({ text: "x", failKind: "require-manager" }), (err: unknown) => {
      assert.ok(err instanceof RpcError);
      assert.equal(err.status, GrpcStatus.PERMISSION_DENIED);
      assert.equal(err.code, "LW_ERR_PERMISSION_DENIED");
      assert.match(err.message, /needs a manager certificate; the caller is a peer/);
      return true;
    });
    const manager = createClient(EchoService, `127.0.0.1:${port}`, { security: tlsAs("manager"), serverRoles: ["scheduler"] });
    try {
      assert.equal((await manager.echo({ text: "ok", failKind: "require-manager" })).text, "ok");
    } finally {
      manager.close();
    }
  });

  for (const [name, security] of [
    ["no certificate (plain text)", { mode: "insecure" } as Security],
    ["a certificate of another CA", tlsAs("manager", "", createCertificateAuthority())],
  ] as const)
    it(`a client with ${name} cannot call at all`, async () => {
      const stranger = createClient(EchoService, `127.0.0.1:${port}`, { security, serverRoles: ["scheduler"] });
      try {
        await assert.rejects(stranger.echo({ text: "x" }, { timeoutMs: 3_000 }), (err: unknown) => {
          assert.ok(err instanceof RpcError);
          assert.ok(err.status === GrpcStatus.UNAVAILABLE || err.status === GrpcStatus.DEADLINE_EXCEEDED, `status ${err.status}: ${err.message}`);
          return true;
        });
      } finally {
        stranger.close();
      }
    });

  it("a client refuses a server whose certificate carries another role", async () => {
    const wary = createClient(EchoService, `127.0.0.1:${port}`, { security: tlsAs("manager"), serverRoles: ["peer", "seed"] });
    try {
      await assert.rejects(wary.echo({ text: "x" }, { timeoutMs: 3_000 }), (err: unknown) => {
        assert.ok(err instanceof RpcError);
        assert.ok(err.status === GrpcStatus.UNAVAILABLE || err.status === GrpcStatus.DEADLINE_EXCEEDED, `status ${err.status}: ${err.message}`);
        return true;
      });
    } finally {
      wary.close();
    }
  });
});

describe("grpc-js adapter, insecure", () => {
  it("serves in the clear, with no caller identity and requireRole letting everyone through", async () => {
    const server = new RpcServer({ security: { mode: "insecure" } });
    server.add(EchoService, {
      async echo(request, context) {
        maybeFail(request, context);
        return { text: `${context.caller?.subject ?? "nobody"} secure=${context.secure}`, index: 0 };
      },
      async *echoMany() {},
      async collect() {
        return { text: "", index: 0 };
      },
      async *chat() {},
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createClient(EchoService, `127.0.0.1:${port}`, { security: { mode: "insecure" }, serverRoles: ["scheduler"] });
    try {
      assert.equal((await client.echo({ text: "x", failKind: "require-manager" })).text, "nobody secure=false");
    } finally {
      client.close();
      await server.close();
    }
  });
});
