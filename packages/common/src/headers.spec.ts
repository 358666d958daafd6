import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { headerValue } from "./headers.js";

describe("headerValue", () => {
  it("finds a header whatever the case of its key or of the name asked for", () => {
    assert.equal(headerValue({ AUTHORIZATION: "Bearer t" }, "authorization"), "Bearer t");
    assert.equal(headerValue({ authorization: "Bearer t" }, "Authorization"), "Bearer t");
    assert.equal(headerValue({ Accept: "x" }, "authorization"), undefined);
  });
});
