import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LacewingError, type ErrorKind } from "@lacewing/common";
import { EchoService, type EchoRequest } from "../gen/lacewing/testing/v1/echo_pb.js";
import { createClient, type RpcClient } from "./client.js";
import { RpcServer } from "./server.js";
import { GrpcStatus, RpcError } from "./status.js";

function maybeFail(request: EchoRequest): void {
  if (request.failKind === "secret") throw new Error("database password is hunter2");
  if (request.failKind) throw new LacewingError("LW_ERR_TEST", request.failKind as ErrorKind, `failed as ${request.failKind}`);
}

describe("grpc-js adapter over a real socket", () => {
  const server = new RpcServer();
  let client: RpcClient<typeof EchoService>;
  let cancelledOnServer: () => void = () => undefined;
  const serverSawCancel = new Promise<void>((resolve) => (cancelledOnServer = resolve));

  before(async () => {
    server.add(EchoService, {
      async echo(request, context) {
        maybeFail(request);
        if (request.delayMs) await sleep(request.delayMs, undefined, { signal: context.signal }).catch(() => cancelledOnServer());
        return { text: request.text, index: 0 };
      },
      async *echoMany(request, context) {
        maybeFail(request);
        for (let i = 0; i < request.repeat; i++) {
          if (request.delayMs) await sleep(request.delayMs);
          if (context.signal.aborted) return;
          yield { text: request.text, index: i };
        }
      },
      async collect(requests) {
        const texts: string[] = [];
        for await (const request of requests) {
          maybeFail(request);
          texts.push(request.text);
        }
        return { text: texts.join(","), index: texts.length };
      },
      async *chat(requests) {
        let index = 0;
        for await (const request of requests) {
          maybeFail(request);
          yield { text: request.text.toUpperCase(), index: index++ };
        }
      },
    });
    const port = await server.listen("127.0.0.1:0");
    client = createClient(EchoService, `127.0.0.1:${port}`);
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
      assert.equal(err.code, "LW_ERR_TEST");
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
    const lonely = createClient(EchoService, "127.0.0.1:1");
    try {
      await assert.rejects(
        lonely.echo({ text: "x" }, { timeoutMs: 2_000 }),
        (err: unknown) => err instanceof RpcError && (err.status === GrpcStatus.UNAVAILABLE || err.status === GrpcStatus.DEADLINE_EXCEEDED),
      );
    } finally {
      lonely.close();
    }
  });
});
