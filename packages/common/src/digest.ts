import { ErrorCode } from "./error-codes.js";
import { createHash, type Hash } from "node:crypto";
import { LacewingError } from "./errors.js";

export type DigestAlgorithm = "sha256" | "sha512";

export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
}

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** Parses `sha256:<hex>` / `sha512:<hex>`; throws LW_ERR_BAD_DIGEST. */
export function parseDigest(text: string): Digest {
  const match = /^(sha256|sha512):([a-fA-F0-9]+)$/.exec(text.trim());
  const algorithm = match?.[1] as DigestAlgorithm | undefined;
  const hex = match?.[2]?.toLowerCase();
  if (!algorithm || !hex || hex.length !== HEX_LENGTH[algorithm]) {
    throw new LacewingError(ErrorCode.badDigest, "invalid_argument", `invalid digest ${JSON.stringify(text)}: expected sha256:<64 hex> or sha512:<128 hex>`);
  }
  return { algorithm, hex };
}

export function formatDigest(digest: Digest): string {
  return `${digest.algorithm}:${digest.hex}`;
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

/**
 * SHA-256 of a piece's bytes, as hex: what a piece journal stores, what
 * the scheduler hands out for the piece, and what a child verifies.
 */
export function pieceDigestOf(data: Uint8Array | readonly Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const chunk of data instanceof Uint8Array ? [data] : data) hash.update(chunk);
  return hash.digest("hex");
}

/** A running piece hash, for bytes that arrive in chunks (digest("hex") gives what pieceDigestOf would). */
export function createPieceHasher(): Hash {
  return createHash("sha256");
}
