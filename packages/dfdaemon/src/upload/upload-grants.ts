import { createHash, randomBytes } from "node:crypto";

/**
 * Credentials for the download port. A child gets one per task on the
 * SyncPieces stream, which runs over mutual TLS, so only a cluster member
 * ever holds one; the piece bytes themselves travel over plain HTTP (or
 * TLS with --upload-tls). A grant lives as long as its stream, plus a grace
 * period for the pieces already in flight.
 */
export class UploadGrants {
  /** By SHA-256 of the token: a lookup leaks nothing about a token through timing. */
  readonly #grants = new Map<string, { taskId: string }>();
  readonly #graceMs: number;

  constructor(graceMs = 30_000) {
    this.#graceMs = graceMs;
  }

  /** A new token for `taskId`; call `revoke` when its stream ends. */
  issue(taskId: string): { token: string; revoke: () => void } {
    const token = randomBytes(32).toString("base64url");
    const key = keyOf(token);
    this.#grants.set(key, { taskId });
    let revoked = false;
    return {
      token,
      revoke: () => {
        if (revoked) return;
        revoked = true;
        setTimeout(() => this.#grants.delete(key), this.#graceMs).unref();
      },
    };
  }

  /** True when `token` (from an `Authorization: Bearer` header) grants pieces of `taskId`. */
  allows(token: string | undefined, taskId: string): boolean {
    if (token === undefined || token === "") return false;
    return this.#grants.get(keyOf(token))?.taskId === taskId;
  }

  get size(): number {
    return this.#grants.size;
  }
}

function keyOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  return header?.startsWith("Bearer ") === true ? header.slice(7) : undefined;
}
