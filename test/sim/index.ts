// The simulator: checkers (linearizability, streams and consumer groups, Raft safety), the models
// (the checker's own key-value model, the key-value service's), the deterministic infrastructure
// (scheduler, network, fault schedule and injector, seed-derived options, key-value and stream
// workloads, run skeleton), the two cluster harnesses (level 1: Raft cores; level 2: the real
// runtime, storage and services) and the list of known product issues.

export { coreCluster, simTiming } from "./core-cluster.js";
export {
  applyFault,
  atLeaderMoment,
  type FaultInjector,
  type FaultTarget,
  type FiredFault,
  injectFaults,
  type LeaderView,
  type PartitionableNetwork,
  quorumIndex,
} from "./fault-injector.js";
export {
  type Aim,
  aimOf,
  clusterNodes,
  defaultFaultWeights,
  describeFaultEvent,
  describeFaultSchedule,
  type FaultEvent,
  type FaultKind,
  type FaultSchedule,
  type FaultScheduleOptions,
  FaultState,
  faultBudget,
  generateFaultSchedule,
  type LeaderMoment,
  leaderMoments,
} from "./fault-schedule.js";
export {
  assertWellFormed,
  completed,
  type History,
  type Operation,
  type Outcome,
  timedOut,
} from "./history.js";
export { type KnownIssue, knownIssueOf, knownIssues } from "./known-issues.js";
export { type GeneratedKvHistory, generateKvHistory, type KvHistoryGenOptions } from "./kv-history-gen.js";
export {
  applyKv,
  describeKvOutput,
  type KvInput,
  type KvKeyState,
  type KvOperation,
  type KvOutput,
  kvMayBecomePossible,
  kvModel,
  kvUnknownClasses,
  partitionByKey,
  sameKvOutput,
} from "./kv-model.js";
export {
  type ServiceKvInput,
  type ServiceKvKeyState,
  type ServiceKvOperation,
  type ServiceKvOutput,
  sameServiceKvOutput,
  serviceKvDialect,
  serviceKvModel,
  stepServiceKv,
} from "./kv-service-model.js";
export {
  type KvDialect,
  type KvMix,
  type KvOpKind,
  type KvTarget,
  KvWorkload,
  type KvWorkloadCounters,
  type KvWorkloadOptions,
  kvVersionDialect,
  type SubmitResult,
} from "./kv-workload.js";
export {
  type CheckOptions,
  type CheckResult,
  checkLinearizable,
  type LinearizedStep,
  type Model,
  type NotLinearizableReport,
} from "./linearizability.js";
export { pickWeighted } from "./pick-weighted.js";
export {
  checkRaftSafety,
  type ObservedEntry,
  type RaftObservation,
  RaftSafetyChecker,
  type RaftViolation,
  type RaftViolationKind,
} from "./raft-safety.js";
export { type RegressionSeed, regressionSeeds } from "./regression-seeds.js";
export {
  describeServiceState,
  type RuntimeCounters,
  type RuntimeWire,
  runtimeCluster,
  serviceEntryHash,
} from "./runtime-cluster.js";
export { Scheduler, type SchedulerOptions, SimulationLimitError, type TimerId } from "./scheduler.js";
export {
  type Deliver,
  type NetworkCounters,
  type NetworkOptions,
  type Probability,
  SimNetwork,
} from "./sim-network.js";
export {
  type DiskOptions,
  describeSimOptions,
  parseSimArgs,
  type RuntimeOptions,
  replayLine,
  SimArgsError,
  type SimLevel,
  type SimOptions,
  simOptionsFromSeed,
} from "./sim-options.js";
export {
  type KvRequest,
  runSimulation,
  runSimulationAsync,
  runUntilAsync,
  type SideWorkload,
  type SimCluster,
  type SimEnvironment,
  type SimReport,
} from "./sim-runner.js";
export { runSeed, type SeedOutcome, simulateSeed } from "./simulate.js";
export {
  type AppendOutcome,
  type AppendRecord,
  type ConsumerGroupHistory,
  type ConsumerGroupViolation,
  type ConsumerGroupViolationKind,
  checkConsumerGroup,
  checkStream,
  type ReaderView,
  type StreamEntry,
  type StreamViolation,
  type StreamViolationKind,
} from "./stream-checker.js";
export {
  deadLetterStream,
  type FetchedMessage,
  type FinalStreamState,
  groupName,
  groupStream,
  messageIdHeader,
  type StreamReply,
  type StreamTarget,
  StreamWorkload,
  type StreamWorkloadOptions,
} from "./stream-workload.js";
