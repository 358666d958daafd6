/**
 * Shared building blocks: task ids, piece math, digests, config, logging, errors.
 *
 * ```ts
 * const taskId = taskIdOf({ url, tag: "", application: "" });
 * const pieceLength = pieceLengthFor(contentLength);
 * const config = loadConfig(schema, { file, env: process.env, flags });
 * ```
 */
export { LacewingError, isLacewingError, errorMessage, isAbortError, type ErrorKind, type LacewingErrorOptions } from "./errors.js";
export { ErrorCode, RPC_STATUS_NAMES, isErrorCode, type RpcErrorCode } from "./error-codes.js";
export { DEFAULT_FILTERED_QUERY_PARAMS, canonicalUrl, checkSourceUrl, newPeerId, ociBlobDigestOf, parseUrl, taskIdOf, type TaskIdInput } from "./task-id.js";
export { isS3Url, parseS3Url, s3UrlOf, type S3Location } from "./s3-url.js";
export {
  MAX_CONTENT_LENGTH,
  MAX_PIECE_COUNT,
  MAX_PIECE_LENGTH,
  MIN_AUTO_PIECE_LENGTH,
  MIN_PIECE_LENGTH,
  PIECE_LENGTH_RULE,
  TARGET_MAX_PIECES,
  isPieceLength,
  pieceCountOf,
  pieceGeometryProblem,
  pieceLengthFor,
  pieceRangeOf,
  type PieceRange,
} from "./pieces.js";
export { createDigester, createPieceHasher, formatDigest, parseDigest, pieceDigestOf, type Digest, type DigestAlgorithm } from "./digest.js";
export { field, flagOf, loadConfig, type ConfigOf, type ConfigSources, type Field, type FieldKind, type Schema } from "./config.js";
export { addSchemaOptions, cliOptionsOf, type CliOption } from "./cli-options.js";
export { createLogger, silentLogger, REDACTED_PATHS, type Logger, type LoggerOptions } from "./logger.js";
export { AsyncQueue } from "./async-queue.js";
export { backoffDelay, retry, type BackoffOptions, type RetryOptions } from "./backoff.js";
export { MAX_TIMER_MS, formatBytes, parseBytes, parseDuration } from "./units.js";
export { REDACTED, redactUrl, type RedactUrlOptions } from "./redact-url.js";
export { headerValue } from "./headers.js";
export { DEFAULTS } from "./defaults.js";
export { rendezvousOrder, rendezvousPick } from "./rendezvous.js";
export {
  SchedulerEndpoints,
  parseSchedulerEntry,
  type Closable,
  type LookupAll,
  type SchedulerEndpointsOptions,
  type SchedulerEntry,
} from "./scheduler-endpoints.js";
export { MetricsServer } from "./metrics-server.js";
export { deferred, type Deferred } from "./deferred.js";
export { boundPort, closeServer, listenOn } from "./listener.js";
export { ROLES, MEMBER_ROLES, identityOfPeerCertificate, identityOfSubject, identitySubject, type Identity, type Role } from "./security/identity.js";
export { createCertificateAuthority, issueCertificate, type IssueOptions, type KeyPair } from "./security/certificates.js";
export { TLS_FILES, commonNameOf, loadTlsMaterial, tlsMaterialOf, type TlsMaterial } from "./security/tls-material.js";
export { isLoopbackAddress, securityConfigFields, securityOf, type Security, type SecuritySettings } from "./security/security.js";
export { LocalPki, writeTlsDir } from "./security/local-pki.js";
export {
  PERSISTENT_CACHE_BOUNDS,
  checkPersistentCache,
  checkPersistentTaskId,
  persistentCacheMessageOf,
  persistentTaskIdProblem,
  replicasProblem,
  ttlProblem,
  type PersistentCacheMeta,
} from "./persistent-cache.js";
