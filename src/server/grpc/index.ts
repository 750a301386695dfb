// The public surface of the gRPC adapter: the gRPC replicator's MessageService on a node's gRPC
// port, its status table, and the .proto it serves (for clients and tests).
export {
  type GrpcServer,
  type GrpcServerOptions,
  grpcProtoLoaderOptions,
  grpcProtoPath,
  grpcServiceName,
  startGrpcServer,
} from "./grpc-server.js";
export {
  codeTrailer,
  grpcFailureOf,
  grpcStatusOf,
  leaderTrailer,
  messageTrailer,
  postMessageFailureOf,
  postMessageTextOf,
  retryAfterTrailer,
  votersTrailer,
  votersWithEntryTrailer,
} from "./grpc-status.js";
export {
  grpcContentCharsMax,
  grpcDedupeWindowMs,
  grpcRequestIdBytesMax,
  grpcStreamName,
  MessageServiceHandlers,
} from "./message-service.js";
