/**
 * What a client of the local dfdaemon needs, and nothing of the scheduler's
 * or the manager's protocols: `dfget` starts once per download, and loading
 * every generated file and service was most of its start-up.
 *
 * ```ts
 * const client = createUnixClient(dfdaemonv1.Dfdaemon, "/run/lacewing/dfdaemon.sock");
 * ```
 */
export { createUnixClient, type RpcClient } from "./grpc/client.js";
export { RpcError, GrpcStatus } from "./grpc/status.js";
export { DownloadSchema, type Download } from "./gen/lacewing/common/v1/common_pb.js";
export * as dfdaemonv1 from "./gen/lacewing/dfdaemon/v1/dfdaemon_pb.js";
export { create, type MessageInitShape } from "@bufbuild/protobuf";
