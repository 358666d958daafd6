import { formatSize } from "./units.js";

const MiB = 1024 * 1024;

/** Smallest piece length a task may have (dfget --piece-length, a peer's or scheduler's word). */
export const MIN_PIECE_LENGTH = 64 * 1024;
/** Smallest piece length pieceLengthFor chooses from a content length. */
export const MIN_AUTO_PIECE_LENGTH = 1 * MiB;
export const MAX_PIECE_LENGTH = 64 * MiB;
/** What a valid piece length is, in words, for error messages. */
export const PIECE_LENGTH_RULE = `a power of two from ${formatSize(MIN_PIECE_LENGTH)} to ${formatSize(MAX_PIECE_LENGTH)}`;
/** Target upper bound on the number of pieces of a task. */
export const TARGET_MAX_PIECES = 500;

/**
 * Piece size for a task: the smallest power of two that keeps the count
 * near 500, between MIN_AUTO_PIECE_LENGTH (1 MiB) and 64 MiB. Unknown length uses the minimum.
 * Small pieces matter on the way through: a peer can pass a piece on only
 * once it holds all of it, so each hop of a swarm lags a piece-time behind
 * the one before (1 MiB pieces brought the last of 8 peers in 17 % sooner
 * than 4 MiB on the testbed, docs/BENCHMARKS.md).
 */
export function pieceLengthFor(contentLength: number): number {
  if (contentLength <= 0) return MIN_AUTO_PIECE_LENGTH;
  let length = MIN_AUTO_PIECE_LENGTH;
  while (length < MAX_PIECE_LENGTH && Math.ceil(contentLength / length) > TARGET_MAX_PIECES) length *= 2;
  return length;
}

export function pieceCountOf(contentLength: number, pieceLength: number): number {
  if (contentLength <= 0) return 0;
  return Math.ceil(contentLength / pieceLength);
}

export interface PieceRange {
  number: number;
  offset: number;
  length: number;
}

/** Offset and length of piece `number`; the last piece may be short. */
export function pieceRangeOf(number: number, pieceLength: number, contentLength: number): PieceRange {
  const offset = number * pieceLength;
  if (!Number.isInteger(number) || number < 0 || offset >= contentLength) throw new RangeError(`piece ${number} is outside a ${contentLength}-byte task`);
  return { number, offset, length: Math.min(pieceLength, contentLength - offset) };
}

/**
 * Most pieces one task may have. Every per-piece structure a peer can make
 * another process hold (digests, piece sets, journals) is bounded by it.
 */
export const MAX_PIECE_COUNT = 131_072;
/** Largest content a task may have: 8 TiB in 64 MiB pieces. */
export const MAX_CONTENT_LENGTH = MAX_PIECE_COUNT * MAX_PIECE_LENGTH;

/** A power of two between MIN_PIECE_LENGTH and MAX_PIECE_LENGTH. */
export function isPieceLength(pieceLength: number): boolean {
  return Number.isInteger(pieceLength) && pieceLength >= MIN_PIECE_LENGTH && pieceLength <= MAX_PIECE_LENGTH && (pieceLength & (pieceLength - 1)) === 0;
}

/**
 * Why a content length and piece length cannot describe a task, or
 * undefined when they can: what a length from another process must pass
 * before it is believed. A length of -1 is "unknown yet".
 */
export function pieceGeometryProblem(contentLength: number, pieceLength: number): string | undefined {
  if (!Number.isSafeInteger(contentLength) || contentLength < -1 || contentLength > MAX_CONTENT_LENGTH)
    return `content length ${contentLength} is outside 0 to ${MAX_CONTENT_LENGTH} bytes`;
  if (!isPieceLength(pieceLength)) return `piece length ${pieceLength} is not ${PIECE_LENGTH_RULE}`;
  if (pieceCountOf(contentLength, pieceLength) > MAX_PIECE_COUNT)
    return `${contentLength} bytes in ${pieceLength}-byte pieces is more than ${MAX_PIECE_COUNT} pieces`;
  return undefined;
}
