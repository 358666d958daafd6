import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Metadata } from "@grpc/grpc-js";
import { GrpcStatus, RpcError, fromServiceError } from "@lacewing/api";
import { LacewingError, type ErrorCode } from "@lacewing/common";
import { ExitCode, describeFailure } from "./exit-codes.js";

const context = { socket: "/run/lacewing/dfdaemon.sock" };

/** What grpc-js hands a client when a call fails, with the lw-error-code label a Lacewing server sets. */
function serviceError(code: GrpcStatus, details: string, label?: string): unknown {
  const metadata = new Metadata();
  if (label !== undefined) metadata.set("lw-error-code", label);
  return Object.assign(new Error(details), { code, details, metadata });
}

describe("describeFailure", () => {
  it("maps local validation errors to exit 2", () => {
    for (const code of ["LW_ERR_USAGE", "LW_ERR_CONFIG", "LW_ERR_BAD_URL", "LW_ERR_BAD_DIGEST", "LW_ERR_BAD_HEADER"] as const) {
      assert.equal(describeFailure(new LacewingError(code, "invalid_argument", "bad"), context).exitCode, ExitCode.usage, code);
    }
  });

  it("maps the daemon's codes, whatever gRPC status they travelled with", () => {
    const cases: Array<[ErrorCode, GrpcStatus, number]> = [
      ["LW_ERR_DIGEST_MISMATCH", GrpcStatus.FAILED_PRECONDITION, 5],
      ["LW_ERR_DIGEST_MISMATCH", GrpcStatus.INTERNAL, 5],
      ["LW_ERR_OUTPUT", GrpcStatus.PERMISSION_DENIED, 6],
      ["LW_ERR_TIMEOUT", GrpcStatus.DEADLINE_EXCEEDED, 4],
      ["LW_ERR_ORIGIN_STATUS", GrpcStatus.FAILED_PRECONDITION, 1],
      ["LW_ERR_ORIGIN_STATUS", GrpcStatus.UNAVAILABLE, 1],
      ["LW_ERR_NO_SOURCE", GrpcStatus.UNAVAILABLE, 1],
      ["LW_ERR_BAD_REQUEST", GrpcStatus.INTERNAL, 2],
    ];
    for (const [code, status, exitCode] of cases) {
      const failure = describeFailure(new RpcError(status, "the daemon's words", code), context);
      assert.equal(failure.exitCode, exitCode, `${code} over ${GrpcStatus[status]}`);
      assert.equal(failure.code, code);
      assert.equal(failure.message, "the daemon's words");
    }
  });

  it("treats an unlabelled UNAVAILABLE as no daemon and says how to start one", () => {
    const failure = describeFailure(new RpcError(GrpcStatus.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED /x.sock"), context);
    assert.equal(failure.exitCode, ExitCode.noDaemon);
    assert.equal(failure.code, "LW_ERR_NO_DAEMON");
    assert.match(failure.message, /\/run\/lacewing\/dfdaemon\.sock \(connection refused\)/);
    assert.match(failure.message, /npx dfdaemon --scheduler .* --socket \/run\/lacewing\/dfdaemon\.sock/);
  });

  it("maps an unlabelled DEADLINE_EXCEEDED, and a code it does not know of the deadline_exceeded kind, to exit 4", () => {
    assert.equal(describeFailure(new RpcError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded"), context).exitCode, ExitCode.timeout);
    const newer = fromServiceError(serviceError(GrpcStatus.DEADLINE_EXCEEDED, "slow", "LW_ERR_FROM_A_NEWER_DAEMON"));
    assert.equal(newer.transport, false, "a label, even an unknown one, means a Lacewing process chose it");
    assert.equal(newer.details["remoteCode"], "LW_ERR_FROM_A_NEWER_DAEMON");
    const failure = describeFailure(newer, context);
    assert.deepEqual([failure.exitCode, failure.code], [ExitCode.timeout, "LW_ERR_RPC_DEADLINE_EXCEEDED"]);
  });

  it("maps a local cancel to 130 but a cancel in transport to 1", () => {
    assert.equal(describeFailure(new LacewingError("LW_ERR_CANCELLED", "cancelled", "download cancelled"), context).exitCode, 130);
    const transport = fromServiceError(serviceError(GrpcStatus.CANCELLED, "daemon shutting down"));
    assert.equal(transport.transport, true);
    assert.deepEqual([describeFailure(transport, context).exitCode, transport.code], [1, "LW_ERR_RPC_CANCELLED"]);
  });

  it("maps a daemon's invalid_argument to exit 2 and anything unknown to exit 1", () => {
    assert.equal(describeFailure(new RpcError(GrpcStatus.INVALID_ARGUMENT, "bad piece length", "LW_ERR_BAD_REQUEST"), context).exitCode, 2);
    assert.equal(describeFailure(new RpcError(GrpcStatus.INTERNAL, "internal error"), context).exitCode, 1);
    const plain = describeFailure(new Error("boom"), context);
    assert.deepEqual(plain, { exitCode: 1, code: "LW_ERR_INTERNAL", message: "boom" });
  });
});
