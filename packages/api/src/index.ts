/**
 * Generated protocol types and the grpc-js adapter.
 *
 * ```ts
 * const server = new RpcServer().add(Scheduler, impl);
 * await server.listen("127.0.0.1:0");
 * const client = createClient(Scheduler, "127.0.0.1:8002");
 * await client.statTask({ taskId });
 * ```
 */
export { RpcServer, type RpcServerOptions } from "./grpc/server.js";
export { checkServerRole, createClient, createUnixClient, type RpcClient, type RpcClientOptions } from "./grpc/client.js";
export { callerIp, requireRole } from "./grpc/authorize.js";
export { RpcError, GrpcStatus, toStatus, fromServiceError } from "./grpc/status.js";
export { toServiceDefinition } from "./grpc/definition.js";
export type { CallContext, CallOptions, ServiceImpl, ServiceClient } from "./grpc/types.js";
export * from "./gen/lacewing/common/v1/common_pb.js";
export * as schedulerv1 from "./gen/lacewing/scheduler/v1/scheduler_pb.js";
export * as dfdaemonv1 from "./gen/lacewing/dfdaemon/v1/dfdaemon_pb.js";
export * as managerv1 from "./gen/lacewing/manager/v1/manager_pb.js";
export { create, toBinary, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
