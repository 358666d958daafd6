import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { ErrorCode } from "@lacewing/common";
import { EXIT_CODE_OF } from "./exit-codes.js";

const DOC = new URL("../../../../docs/ERROR-CODES.md", import.meta.url);

describe("docs/ERROR-CODES.md", () => {
  it("lists every error code once with the exit code dfget gives it, and no code that does not exist", async () => {
    const rows = (await readFile(DOC, "utf8"))
      .split("\n")
      .map((line) => /^\|\s*`(LW_ERR_[A-Z_]+)`\s*\|[^|]+\|[^|]+\|\s*(\d+|by status)\s*\|$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1]!, match[2]!] as const);
    const documented = new Map(rows);
    assert.equal(documented.size, rows.length, "no code is listed twice");
    for (const code of Object.values(ErrorCode)) assert.equal(documented.get(code), String(EXIT_CODE_OF[code]), `${code} with dfget's exit code`);
    assert.deepEqual(
      [...documented.keys()].filter((code) => !(Object.values(ErrorCode) as string[]).includes(code)),
      [],
    );
  });
});
