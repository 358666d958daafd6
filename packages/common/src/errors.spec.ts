import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LacewingError, errorMessage, isAbortError, isLacewingError } from "./errors.js";

describe("LacewingError", () => {
  it("carries code, kind, details and cause", () => {
    const cause = new Error("root");
    const err = new LacewingError("LW_ERR_INTERNAL", "not_found", "task not found", { cause, details: { taskId: "t" } });
    assert.ok(err instanceof Error);
    assert.equal(err.name, "LacewingError");
    assert.equal(err.code, "LW_ERR_INTERNAL");
    assert.equal(err.kind, "not_found");
    assert.equal(err.message, "task not found");
    assert.deepEqual(err.details, { taskId: "t" });
    assert.equal(err.cause, cause);
    assert.ok(isLacewingError(err));
  });

  it("defaults details to an empty object and has no cause when none is given", () => {
    const err = new LacewingError("LW_ERR_INTERNAL", "internal", "m");
    assert.deepEqual(err.details, {});
    assert.equal("cause" in err, false);
  });
});

describe("error helpers", () => {
  it("isLacewingError rejects plain errors", () => {
    assert.equal(isLacewingError(new Error("x")), false);
    assert.equal(isLacewingError({ code: "LW_ERR_INTERNAL" }), false);
  });

  it("errorMessage reads errors and stringifies anything else", () => {
    assert.equal(errorMessage(new Error("boom")), "boom");
    assert.equal(errorMessage("text"), "text");
    assert.equal(errorMessage(42), "42");
  });

  it("isAbortError recognises the error of an aborted signal", () => {
    const signal = AbortSignal.abort();
    assert.ok(isAbortError(signal.reason));
    assert.ok(isAbortError(Object.assign(new Error("x"), { code: "ABORT_ERR" })));
    assert.equal(isAbortError(new Error("x")), false);
    assert.equal(isAbortError("AbortError"), false);
  });
});
