/**
 * The manager's API as JSON schemas (TypeBox): the one declaration of what
 * each route takes and returns. Fastify validates requests and serializes
 * responses with them, the gRPC front validates a create-job request with
 * the same schema, @fastify/swagger turns them into the OpenAPI document, and
 * the TypeScript types of the jobs come from them (`Static`).
 *
 * A `description` on a string with a `pattern` is also the error message
 * when the pattern fails ("id: must be a job id (a UUID)"), so the document
 * and the answer say the same thing.
 */
import { Type, type Static, type TSchema } from "typebox";

export const JOB_STATES = ["pending", "running", "succeeded", "failed", "cancelled"] as const;
export const JOB_TYPES = ["preheat"] as const;
export const PREHEAT_SCOPES = ["single_seed_peer", "all_seed_peers", "all_peers"] as const;
export const TASK_STATES = ["pending", "running", "succeeded", "failed"] as const;
export const PEER_STATES = ["pending", "running", "back_to_source", "succeeded", "failed"] as const;

export const DEFAULT_PER_PAGE = 20;
export const MAX_PER_PAGE = 100;
export const DEFAULT_PLATFORM = "linux/amd64";

const Timestamp = Type.String({ format: "date-time", description: "an ISO 8601 time" });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const TASK_ID_PATTERN = "^[0-9a-f]{64}$";

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "stable machine-readable code, LW_ERR_*" }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: "the input at fault: a body path such as args.url, a query or path parameter, or body" })),
    }),
  },
  { title: "Error", description: "Every error answer" },
);

// ---- jobs

export const PreheatScope = Type.Enum(PREHEAT_SCOPES, { description: "which hosts download each task" });

/** A job's args as stored and shown: every field present, credentials redacted. */
export const PreheatArgs = Type.Object(
  {
    type: Type.Enum(["image", "file"]),
    urls: Type.Array(Type.String(), { description: "image: the manifest URL; file: one URL per task (userinfo and signed query values redacted)" }),
    tag: Type.String(),
    application: Type.String(),
    filteredQueryParams: Type.Array(Type.String()),
    headers: Type.Record(Type.String(), Type.String(), { description: "header names; every value reads [redacted]" }),
    username: Type.String(),
    password: Type.String({ description: "[redacted] when set" }),
    platform: Type.String(),
    scope: PreheatScope,
  },
  { title: "PreheatArgs" },
);

export const HostResult = Type.Object({
  hostId: Type.String(),
  hostname: Type.String(),
  ip: Type.String(),
  success: Type.Boolean(),
  description: Type.String(),
});

export const TaskResult = Type.Object({
  taskId: Type.String(),
  url: Type.String({ description: "credentials redacted" }),
  digest: Type.String(),
  state: Type.Enum(TASK_STATES),
  error: Type.String(),
  scheduler: Type.String({ description: "the scheduler that owns the task" }),
  hosts: Type.Array(HostResult),
});

export const Job = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    type: Type.Enum(JOB_TYPES),
    state: Type.Enum(JOB_STATES),
    args: PreheatArgs,
    progress: Type.Object({ done: Type.Integer({ minimum: 0 }), total: Type.Integer({ minimum: 0 }) }),
    tasks: Type.Array(TaskResult),
    error: Type.String(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    startedAt: NullableTimestamp,
    finishedAt: NullableTimestamp,
  },
  { title: "Job" },
);

export const JobPage = Type.Object({
  jobs: Type.Array(Job),
  page: Type.Integer({ minimum: 1 }),
  perPage: Type.Integer({ minimum: 1 }),
  total: Type.Integer({ minimum: 0 }),
});

const PreheatRequestArgs = Type.Object(
  {
    type: Type.Enum(["image", "file"], { description: "image: resolve a manifest into its blobs; file: download the URLs" }),
    url: Type.Optional(
      Type.String({ description: "image: the manifest URL https://registry/v2/<name>/manifests/<tag|digest>; file: one http(s) or s3://bucket/key URL" }),
    ),
    urls: Type.Optional(Type.Array(Type.String(), { description: "file: several URLs, one task per distinct task id" })),
    tag: Type.Optional(Type.String({ default: "", description: "part of the task id, as dfget --tag" })),
    application: Type.Optional(Type.String({ default: "", description: "part of the task id, as dfget --application" })),
    filteredQueryParams: Type.Optional(Type.Array(Type.String(), { default: [], description: "query parameters left out of the task id, as dfget --filter" })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String(), { default: {}, description: "request headers for the origin; kept secret" })),
    username: Type.Optional(Type.String({ default: "", description: "registry user (image)" })),
    password: Type.Optional(Type.String({ default: "", description: "registry password (image); kept secret" })),
    platform: Type.Optional(
      Type.String({ default: DEFAULT_PLATFORM, pattern: "^[a-zA-Z0-9]+/[a-zA-Z0-9_]+(/[a-zA-Z0-9]+)?$", description: "os/arch or os/arch/variant" }),
    ),
    scope: Type.Optional(Type.Enum(PREHEAT_SCOPES, { default: "single_seed_peer", description: "which hosts download each task" })),
  },
  // A misspelt key ("scopes") would otherwise fall back to a default silently.
  { additionalProperties: false },
);

export const CreateJobBody = Type.Object(
  {
    type: Type.Enum(JOB_TYPES),
    args: PreheatRequestArgs,
  },
  { additionalProperties: false, title: "CreateJob" },
);

export const ListJobsQuery = Type.Object({
  state: Type.Optional(Type.Enum(JOB_STATES)),
  type: Type.Optional(Type.Enum(JOB_TYPES)),
  page: Type.Optional(Type.Integer({ minimum: 1, default: 1, description: "a positive integer" })),
  perPage: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PER_PAGE, description: `a positive integer, at most ${MAX_PER_PAGE}` })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PER_PAGE, description: "the same as perPage" })),
});

export const JobIdParams = Type.Object({
  id: Type.String({ pattern: UUID_PATTERN, description: "a job id (a UUID)" }),
});

// ---- cluster

export const SchedulerStatus = Type.Object(
  {
    address: Type.String(),
    reachable: Type.Boolean(),
    error: Type.String(),
    hostCount: Type.Integer({ minimum: 0 }),
  },
  { title: "SchedulerStatus" },
);

export const Cluster = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  schedulerAddresses: Type.Array(Type.String()),
});

export const Host = Type.Object(
  {
    id: Type.String(),
    hostname: Type.String(),
    ip: Type.String(),
    port: Type.Integer({ description: "the peer service's gRPC port" }),
    downloadPort: Type.Integer({ description: "the port serving piece bytes" }),
    type: Type.Enum(["normal", "seed"]),
    idc: Type.String({ description: "zone: the data centre" }),
    location: Type.String({ description: "zone: a|b|c, longer common prefixes are closer" }),
    cluster: Type.String(),
    peerCount: Type.Integer({ minimum: 0, description: "downloads and cached tasks registered" }),
    uploadCount: Type.Integer({ minimum: 0, description: "upload slots in use at the last announcement" }),
    uploadLimit: Type.Integer({ minimum: 0, description: "upload slots offered; 0 means unlimited" }),
    uploadBytes: Type.Number({ minimum: 0, description: "bytes served to other peers since the daemon started" }),
    uploadBytesPerSecond: Type.Number({ minimum: 0, description: "between the last two announcements" }),
    cacheBytes: Type.Number({ minimum: 0, description: "verified piece bytes in the node's cache" }),
    cacheQuotaBytes: Type.Number({ minimum: 0, description: "the cache's quota; 0 when the filesystem is the limit" }),
    announceIntervalSeconds: Type.Integer({ minimum: 0 }),
    lastAnnouncedAt: NullableTimestamp,
    alive: Type.Boolean({ description: "announced within twice its interval" }),
    scheduler: Type.String({ description: "the scheduler that reported the host" }),
  },
  { title: "Host" },
);

export const HostList = Type.Object({
  hosts: Type.Array(Host),
  unreachable: Type.Array(SchedulerStatus, { description: "schedulers that did not answer" }),
});

// ---- tasks and their flow

export const PeerSource = Type.Object({
  parentId: Type.String({ description: "a parent peer id; empty for the origin" }),
  hostname: Type.String({ description: "the parent's host name; empty for the origin or a host that is gone" }),
  bytes: Type.Number({ minimum: 0 }),
  pieces: Type.Integer({ minimum: 0 }),
});

export const TaskPeer = Type.Object({
  id: Type.String(),
  hostId: Type.String(),
  hostname: Type.String({ description: "empty when the host is no longer known" }),
  hostType: Type.Enum(["normal", "seed", "unknown"]),
  state: Type.Enum(PEER_STATES),
  finishedPieces: Type.Integer({ minimum: 0 }),
  progress: Type.Number({ minimum: 0, maximum: 1, description: "finished pieces over total pieces; 0 while the length is unknown" }),
  bytesFromOrigin: Type.Number({ minimum: 0 }),
  bytesFromPeers: Type.Number({ minimum: 0 }),
  sources: Type.Array(PeerSource, { description: "where the peer's bytes came from, from the scheduler's recent flow record" }),
  updatedAt: Timestamp,
});

export const Task = Type.Object(
  {
    id: Type.String(),
    url: Type.String({ description: "credentials and signed query values redacted" }),
    tag: Type.String(),
    application: Type.String(),
    digest: Type.String({ description: "the content digest downloads expect; empty when none said" }),
    contentLength: Type.Number({ description: "-1 while unknown" }),
    pieceLength: Type.Number({ minimum: 0 }),
    totalPieces: Type.Integer({ minimum: 0 }),
    state: Type.Enum(TASK_STATES),
    createdAt: Timestamp,
    scheduler: Type.String(),
    peers: Type.Array(TaskPeer),
  },
  { title: "Task" },
);

export const TaskList = Type.Object({
  tasks: Type.Array(Task),
  page: Type.Integer({ minimum: 1 }),
  perPage: Type.Integer({ minimum: 1 }),
  total: Type.Integer({ minimum: 0 }),
  unreachable: Type.Array(SchedulerStatus),
});

export const ListTasksQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 2048, description: "a substring of the URL, the digest or the task id" })),
  state: Type.Optional(Type.Enum(TASK_STATES)),
  page: Type.Optional(Type.Integer({ minimum: 1, default: 1, description: "a positive integer" })),
  perPage: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_PER_PAGE, default: DEFAULT_PER_PAGE, description: `a positive integer, at most ${MAX_PER_PAGE}` }),
  ),
});

export const TaskIdParams = Type.Object({
  id: Type.String({ pattern: TASK_ID_PATTERN, description: "a task id (64 lower-case hex digits)" }),
});

export const TaskFlowQuery = Type.Object({
  afterSeq: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: "landings already seen: the previous answer's nextSeq" })),
});

export const FlowPeer = Type.Object({
  peerId: Type.String(),
  hostId: Type.String(),
  hostname: Type.String({ description: "empty when the host is no longer known" }),
  hostType: Type.Enum(["normal", "seed", "unknown"]),
  ip: Type.String(),
  idc: Type.String(),
  location: Type.String(),
});

export const TaskFlow = Type.Object(
  {
    taskId: Type.String(),
    scheduler: Type.String({ description: "the scheduler whose record this is" }),
    startedAt: NullableTimestamp,
    task: Type.Union([Task, Type.Null()], { description: "the task as its scheduler knows it now; null once it forgot it" }),
    peers: Type.Array(FlowPeer, { description: "edges and landings name peers by their index here" }),
    edges: Type.Array(
      Type.Object({
        parent: Type.Integer({ minimum: -1, description: "index into peers; -1 is the origin" }),
        child: Type.Integer({ minimum: 0 }),
        bytes: Type.Number({ minimum: 0 }),
        pieces: Type.Integer({ minimum: 0 }),
        firstMs: Type.Integer({ minimum: 0, description: "milliseconds after startedAt" }),
        lastMs: Type.Integer({ minimum: 0 }),
      }),
    ),
    landings: Type.Array(
      Type.Object({
        child: Type.Integer({ minimum: 0 }),
        parent: Type.Integer({ minimum: -1 }),
        piece: Type.Integer({ minimum: 0 }),
        ms: Type.Integer({ minimum: 0, description: "milliseconds after startedAt" }),
      }),
      { description: "piece landings after afterSeq, oldest first" },
    ),
    nextSeq: Type.Integer({ minimum: 0, description: "pass as afterSeq to get only newer landings" }),
    droppedLandings: Type.Integer({ minimum: 0, description: "landings after afterSeq no longer kept" }),
    droppedPeerLandings: Type.Integer({ minimum: 0, description: "landings of peers beyond the record's peer cap, not itemised" }),
    droppedEdgeLandings: Type.Integer({ minimum: 0, description: "landings on edges beyond the record's edge cap, not itemised" }),
  },
  { title: "TaskFlow" },
);

export const Health = Type.Object({ status: Type.String() });

export type CreateJobBody = Static<typeof CreateJobBody>;
export type ListJobsQuery = Static<typeof ListJobsQuery>;
export type ListTasksQuery = Static<typeof ListTasksQuery>;
export type JobView = Static<typeof Job>;
export type HostView = Static<typeof Host>;
export type SchedulerStatusView = Static<typeof SchedulerStatus>;
export type TaskView = Static<typeof Task>;
export type TaskPeerView = Static<typeof TaskPeer>;
export type TaskFlowView = Static<typeof TaskFlow>;
export type ClusterView = Static<typeof Cluster>;
export type ErrorBodyView = Static<typeof ErrorBody>;
export type JobPageView = Static<typeof JobPage>;
export type HostListView = Static<typeof HostList>;
export type TaskListView = Static<typeof TaskList>;
export type { TSchema };
