export { type Cancel, type Env, systemEnv } from "./env.js";
export { GroupSnapshots, type SnapshotBackup, snapshotChunkBytesMax } from "./group-snapshots.js";
export { GroupMetrics, Histogram, latencyBucketsMs } from "./metrics.js";
export { NodeError, type NodeErrorCode, type VoterCount } from "./node-error.js";
export { type HostedGroup, NodeHost, type NodeHostOptions, type PeerEntry } from "./node-host.js";
export {
  decodeNodeWire,
  encodeNodeWire,
  type NodeWireMessage,
  nodeWireCodec,
  type PeerInfo,
} from "./node-wire.js";
export type { GroupStorage, MessageSender, PersistBatch, StateMachine } from "./ports.js";
export { RaftGroup, type RaftGroupOptions } from "./raft-group.js";
export { WalGroupStorage } from "./wal-group-storage.js";
