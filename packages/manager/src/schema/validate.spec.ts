import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import { CreateJobBody, JobIdParams, ListJobsQuery } from "./api-schemas.js";
import { validateInput } from "./validate.js";

function fieldOf(run: () => unknown): { field: unknown; message: string } {
  try {
    run();
  } catch (err) {
    assert.ok(isLacewingError(err) && err.code === "LW_ERR_MANAGER_INVALID_ARGUMENT" && err.kind === "invalid_argument");
    return { field: err.details["field"], message: err.message };
  }
  assert.fail("the input was accepted");
}

describe("schema validation", () => {
  it("names the field as a caller writes it: a dotted path, the key itself when unknown or missing, the map or list for a bad value inside", () => {
    const job = (args: Record<string, unknown>, extra: Record<string, unknown> = {}): unknown => ({
      type: "preheat",
      args: { type: "file", ...args },
      ...extra,
    });
    assert.deepEqual(
      fieldOf(() => validateInput(CreateJobBody, job({ scopes: "all_peers" }))),
      { field: "args.scopes", message: "args.scopes: unknown field" },
    );
    assert.equal(fieldOf(() => validateInput(CreateJobBody, job({}, { priority: 1 }))).field, "priority");
    assert.equal(fieldOf(() => validateInput(CreateJobBody, job({ headers: { a: 1 } }))).field, "args.headers");
    assert.equal(fieldOf(() => validateInput(CreateJobBody, job({ urls: ["ok", 2] }))).field, "args.urls");
    assert.deepEqual(
      fieldOf(() => validateInput(CreateJobBody, job({ scope: "everyone" }))),
      {
        field: "args.scope",
        message: "args.scope: must be one of single_seed_peer, all_seed_peers, all_peers",
      },
    );
    assert.equal(fieldOf(() => validateInput(CreateJobBody, { type: "preheat" })).field, "args");
    assert.equal(fieldOf(() => validateInput(CreateJobBody, [])).field, "body");
    assert.equal(fieldOf(() => validateInput(CreateJobBody, null)).field, "body");
  });

  it("says a pattern's description as its message, so the document and the answer agree", () => {
    assert.deepEqual(
      fieldOf(() => validateInput(JobIdParams, { id: "nope" }, "params")),
      { field: "id", message: "id: must be a job id (a UUID)" },
    );
  });

  it("fills in the schema's defaults and coerces query strings, but never a JSON body's types", () => {
    const body = validateInput(CreateJobBody, { type: "preheat", args: { type: "image", url: "https://r/v2/a/manifests/1" } });
    assert.equal(body.args.platform, "linux/amd64");
    assert.equal(body.args.scope, "single_seed_peer");
    assert.deepEqual(validateInput(ListJobsQuery, { page: "2", perPage: "5" }, "querystring"), { page: 2, perPage: 5 });
    assert.equal(fieldOf(() => validateInput(ListJobsQuery, { perPage: "101" }, "querystring")).field, "perPage");
    assert.equal(fieldOf(() => validateInput(CreateJobBody, { type: "preheat", args: { type: "file", url: "http://x/y", tag: 7 } })).field, "args.tag");
  });
});
