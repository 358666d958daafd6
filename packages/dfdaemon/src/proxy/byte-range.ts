/** Inclusive byte range of a response body. */
export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export type RangeAnswer = { kind: "full" } | { kind: "partial"; range: ByteRange } | { kind: "unsatisfiable" };

/**
 * Reads a `Range` header against a body of `length` bytes. One range is
 * honoured (`bytes=a-b`, `bytes=a-`, `bytes=-n`); a header this does not
 * understand, or several ranges, means the whole body (RFC 9110 lets a
 * server ignore Range).
 */
export function parseRange(header: string | undefined, length: number): RangeAnswer {
  if (header === undefined) return { kind: "full" };
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return { kind: "full" };
  const [, first, last] = match as unknown as [string, string, string];
  if (first === "" && last === "") return { kind: "full" };
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || length === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", range: { start: Math.max(0, length - suffix), end: length - 1 } };
  }
  const start = Number(first);
  if (start >= length) return { kind: "unsatisfiable" };
  const end = last === "" ? length - 1 : Math.min(Number(last), length - 1);
  if (end < start) return { kind: "full" };
  return { kind: "partial", range: { start, end } };
}
