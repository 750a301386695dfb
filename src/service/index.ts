// The public surface of the service layer: the services every protocol adapter calls, the typed
// results and errors they answer with, and the pieces the node assembly wires together. Adapters
// (src/server/*) import from here only.
export { ApplyNotifier, type WaitClock } from "./apply-notifier.js";
export { AuthService } from "./auth/auth-service.js";
export {
  type AuthFailures,
  AuthGuard,
  anonymous,
  currentPrincipal,
  type Principal,
  type RateLimit,
  type RateLimitCounts,
  RateLimiter,
  runAs,
  system,
  unauthenticated,
} from "./auth/index.js";
export {
  ClusterService,
  type ClusterStatus,
  type MemberStatus,
  type SnapshotBackup,
} from "./cluster/cluster-service.js";
export type { MemberRecord } from "./cluster/members.js";
export type { JoinAnswer, MembershipOptions } from "./cluster/membership.js";
export { Membership, peerAddressOf } from "./cluster/membership.js";
export {
  type ApplyOutcome,
  type Command,
  type CommandKind,
  type CommandResult,
  decodeEntryCommands,
  type EntryOutcome,
  encodeEntryCommands,
  encodeEnvelope,
  type ResultOf,
} from "./command.js";
export {
  CommandBatcher,
  type CommandBatcherSettings,
  defaultCommandBatcherSettings,
  type ProposedCommand,
} from "./command-batcher.js";
export {
  CairnError,
  type ErrorCode,
  type ErrorDetails,
  errorCodes,
  isCairnError,
  isErrorCode,
  type LeaderAddresses,
  type NoDetails,
} from "./errors.js";
export { GroupReplication, toCairnError } from "./group-replication.js";
export {
  type KvExpiry,
  type KvRangePage,
  type KvRangeQuery,
  type KvRecord,
  type KvResult,
  type KvStep,
  nextExpiryMs,
  type StepResult,
  type TransactionStep,
} from "./kv/index.js";
export {
  type Consistency,
  defaultKvLimits,
  type KvGetResult,
  type KvLimits,
  type KvPutOptions,
  KvService,
  type KvWriteAck,
} from "./kv/kv-service.js";
export { LeaderLink, type LeaderLinkOptions } from "./leader-link.js";
export { type ReplicationPort, type Staleness, type WriteConcern, writeConcerns } from "./replication.js";
export { type Space, type StateReader, type StateWriter, spaceCodes, spaceKinds, spaces } from "./state.js";
export { type ReportedHashes, StateCheck, type StateCheckReport } from "./state-check.js";
export { hashState, type StateHash } from "./state-hash.js";
export { MemoryBackend, ServiceStateMachine, type StateBackend } from "./state-machine.js";
export { StoreBackend, type StoreBackendOptions } from "./store-backend.js";
export type {
  ClaimTarget,
  DiscardPolicy,
  GivenId,
  GroupConfig,
  GroupConfigChanges,
  Header,
  SettleAction,
  StartAt,
  StreamConfig,
  StreamMessage,
  StreamTrim,
} from "./streams/index.js";
export { trimBlockSeqs } from "./streams/index.js";
export {
  type AppendInput,
  ackWaitNever,
  type BatchAppendInput,
  type BatchAppendResult,
  type ConsumerInfo,
  type DeliveredMessage,
  defaultStreamLimits,
  type FetchAnswer,
  type FetchOptions,
  type GroupConsumerInfo,
  type GroupCreateOptions,
  type GroupInfo,
  isStreamName,
  type PendingEntry,
  type ReadQuery,
  type ReadResult,
  type StreamCreateOptions,
  type StreamCursor,
  type StreamInfo,
  type StreamLimits,
  StreamService,
  type StreamSummary,
} from "./streams/stream-service.js";
