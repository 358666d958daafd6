const MiB = 1024 * 1024;

export const MIN_PIECE_LENGTH = 4 * MiB;
export const MAX_PIECE_LENGTH = 64 * MiB;
/** Target upper bound on the number of pieces of a task. */
export const TARGET_MAX_PIECES = 500;

/**
 * Piece size for a task: the smallest power of two that keeps the count
 * near 500, between 4 MiB and 64 MiB. Unknown length uses the minimum.
 */
export function pieceLengthFor(contentLength: number): number {
  if (contentLength <= 0) return MIN_PIECE_LENGTH;
  let length = MIN_PIECE_LENGTH;
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
