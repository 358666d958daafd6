import { isIP } from "node:net";
import type { Download, Host, TaskInfo } from "@lacewing/api";
import {
  ErrorCode,
  LacewingError,
  MAX_PIECE_COUNT,
  checkSourceUrl,
  isPieceLength,
  parseDigest,
  pieceCountOf,
  pieceGeometryProblem,
  PIECE_LENGTH_RULE,
} from "@lacewing/common";

/**
 * Bounds on everything a client tells the scheduler. Every field is checked
 * before it is stored or acted on, so no client can make the scheduler hold
 * more than a bounded amount per host, peer or task, or act on a value it
 * could not have meant.
 */

/** Longest host, peer or other id. */
export const MAX_ID_LENGTH = 256;
const MAX_URL_LENGTH = 8192;
const MAX_SHORT_TEXT = 256;
const MAX_HEADERS = 64;
const MAX_HEADER_VALUE = 16 * 1024;
const MAX_FILTERED_PARAMS = 64;
const MAX_UPLOAD_LIMIT = 10_000;
/** Announce intervals are clamped to this range: a host that says "never expire me" is expired like any other. */
export const ANNOUNCE_INTERVAL_BOUNDS_S = { min: 1, max: 300 } as const;
const TASK_ID = /^[0-9a-f]{64}$/;
const PRINTABLE = /^[\x21-\x7e]+$/;

function invalid(field: string, problem: string): LacewingError {
  return new LacewingError(ErrorCode.badRequest, "invalid_argument", `${field} ${problem}`, { details: { field } });
}

function checkText(field: string, value: string, max: number, required = false): void {
  if (required && value === "") throw invalid(field, "is required");
  if (Buffer.byteLength(value) > max) throw invalid(field, `is longer than ${max} bytes`);
}

export function checkId(field: string, value: string): void {
  checkText(field, value, MAX_ID_LENGTH, true);
  if (!PRINTABLE.test(value)) throw invalid(field, "must be printable ASCII without spaces");
}

export function checkTaskId(value: string): void {
  if (!TASK_ID.test(value)) throw invalid("task_id", "must be 64 lowercase hex digits (a sha256)");
}

function checkPort(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw invalid(field, "must be a port from 1 to 65535");
}

/** Checks a host announcement; returns it with the announce interval clamped. */
export function checkHost(host: Host | undefined): Host {
  if (host === undefined) throw invalid("host", "is required");
  checkId("host.id", host.id);
  if (isIP(host.ip) === 0) throw invalid("host.ip", `must be an IP address, got ${JSON.stringify(host.ip.slice(0, 64))}`);
  checkText("host.hostname", host.hostname, 255);
  checkPort("host.port", host.port);
  checkPort("host.download_port", host.downloadPort);
  checkText("host.idc", host.idc, MAX_SHORT_TEXT);
  checkText("host.location", host.location, MAX_SHORT_TEXT);
  checkText("host.cluster", host.cluster, MAX_SHORT_TEXT);
  if (host.concurrentUploadLimit > MAX_UPLOAD_LIMIT) throw invalid("host.concurrent_upload_limit", `must be at most ${MAX_UPLOAD_LIMIT}`);
  const { min, max } = ANNOUNCE_INTERVAL_BOUNDS_S;
  return { ...host, announceIntervalSeconds: Math.min(max, Math.max(min, host.announceIntervalSeconds || 30)) };
}

/** Checks what a peer says it downloads (register, TriggerDownload). */
export function checkDownload(download: Download | undefined, field = "download"): Download {
  if (download === undefined) throw invalid(field, "is required");
  checkText(`${field}.url`, download.url, MAX_URL_LENGTH, true);
  try {
    checkSourceUrl(download.url);
  } catch {
    throw invalid(`${field}.url`, "must be an http, https or s3 URL");
  }
  checkText(`${field}.source_version`, download.sourceVersion, MAX_SHORT_TEXT);
  if (download.objectStorage !== undefined) {
    const storage = download.objectStorage;
    for (const [name, value] of Object.entries({
      access_key_id: storage.accessKeyId,
      secret_access_key: storage.secretAccessKey,
      session_token: storage.sessionToken,
      region: storage.region,
      endpoint: storage.endpoint,
    }))
      // Session tokens run to a few KiB; the text is never echoed, only its field.
      checkText(`${field}.object_storage.${name}`, value, name === "session_token" ? MAX_HEADER_VALUE : MAX_URL_LENGTH);
  }
  checkText(`${field}.tag`, download.tag, MAX_SHORT_TEXT);
  checkText(`${field}.application`, download.application, MAX_SHORT_TEXT);
  if (download.filteredQueryParams.length > MAX_FILTERED_PARAMS)
    throw invalid(`${field}.filtered_query_params`, `has more than ${MAX_FILTERED_PARAMS} entries`);
  for (const param of download.filteredQueryParams) checkText(`${field}.filtered_query_params`, param, MAX_SHORT_TEXT);
  const headers = Object.entries(download.requestHeaders);
  if (headers.length > MAX_HEADERS) throw invalid(`${field}.request_headers`, `has more than ${MAX_HEADERS} entries`);
  for (const [name, value] of headers) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/.test(name)) throw invalid(`${field}.request_headers`, "has a name that is not an HTTP token");
    checkText(`${field}.request_headers`, value, MAX_HEADER_VALUE);
  }
  if (download.digest !== "") {
    try {
      parseDigest(download.digest);
    } catch {
      throw invalid(`${field}.digest`, "must be sha256:<64 hex> or sha512:<128 hex>");
    }
  }
  const pieceLength = Number(download.pieceLength);
  if (pieceLength !== 0 && !isPieceLength(pieceLength)) throw invalid(`${field}.piece_length`, `must be 0 or ${PIECE_LENGTH_RULE}`);
  if (download.timeoutMs > 2_147_483_647n) throw invalid(`${field}.timeout_ms`, "must be at most 2147483647 (about 24 days)");
  return download;
}

/** Checks a task length report; the geometry must be one a task can have. */
export function checkTaskInfo(info: TaskInfo | undefined, field: string): { contentLength: number; pieceLength: number } {
  if (info === undefined) throw invalid(field, "is required");
  const contentLength = Number(info.contentLength);
  const pieceLength = Number(info.pieceLength);
  if (contentLength < 0) return { contentLength: -1, pieceLength };
  const problem = pieceGeometryProblem(contentLength, pieceLength);
  if (problem !== undefined) throw invalid(field, problem);
  if (info.totalPieces !== 0 && info.totalPieces !== pieceCountOf(contentLength, pieceLength))
    throw invalid(`${field}.total_pieces`, `must be ${pieceCountOf(contentLength, pieceLength)} for that length`);
  return { contentLength, pieceLength };
}

/**
 * Checks a piece number: below the task's count when the length is known,
 * and below MAX_PIECE_COUNT in any case (an origin without a length).
 */
export function checkPieceNumber(number: number, totalPieces: number, field = "piece.number"): void {
  const limit = totalPieces > 0 ? totalPieces : MAX_PIECE_COUNT;
  if (!Number.isInteger(number) || number < 0 || number >= limit) throw invalid(field, `${number} is not a piece of this task (it has ${limit})`);
}

export function checkPieceList(numbers: readonly number[], totalPieces: number, field: string): void {
  if (numbers.length > MAX_PIECE_COUNT) throw invalid(field, `has more than ${MAX_PIECE_COUNT} entries`);
  for (const number of numbers) checkPieceNumber(number, totalPieces, field);
}

export function checkSha256(value: Uint8Array, field: string): Buffer {
  if (value.length !== 32) throw invalid(field, "must be 32 bytes (a SHA-256)");
  return Buffer.from(value);
}
