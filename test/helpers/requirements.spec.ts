import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCi, skipUnlessAvailable, unmetRequirements } from "./requirements.js";

describe("test requirements", () => {
  it("reads CI the way runners set it", () => {
    for (const value of ["true", "1", "yes", "TRUE"]) assert.equal(isCi({ CI: value }), true, value);
    for (const value of [undefined, "", "0", "false", " False "]) assert.equal(isCi({ CI: value }), false, String(value));
  });

  it("names a missing command and a closed port, and nothing when all is there", async () => {
    assert.deepEqual(await unmetRequirements({ commands: ["sh"], other: ["", undefined] }), []);
    const unmet = await unmetRequirements({ commands: ["sh", "lacewing-no-such-tool"], services: [{ name: "Nothing", port: 1 }], other: ["helm"] });
    assert.deepEqual(unmet, ["lacewing-no-such-tool", "Nothing on 127.0.0.1:1", "helm"]);
  });

  it("fails instead of skipping under CI, naming the suite and what is missing", async () => {
    await assert.rejects(
      skipUnlessAvailable("some e2e", { commands: ["lacewing-no-such-tool"] }, { CI: "true" }),
      /^Error: some e2e needs lacewing-no-such-tool .*under CI a missing requirement fails/,
    );
    assert.equal(await skipUnlessAvailable("some e2e", { commands: ["sh"] }, { CI: "true" }), false);
  });
});
