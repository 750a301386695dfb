// The simulator: checkers (linearizability, streams and consumer groups, Raft safety), the
// deterministic infrastructure (scheduler, network, fault schedule and injector, seed-derived
// options, KV workload, run skeleton) and the two cluster harnesses (level 1: Raft cores; level 2:
// the real runtime and storage).

export { coreCluster, simTiming } from "./core-cluster.js";
export { applyFault, type FaultTarget, injectFaults, type PartitionableNetwork } from "./fault-injector.js";
export {
  clusterNodes,
  defaultFaultWeights,
  describeFaultSchedule,
  type FaultEvent,
  type FaultKind,
  type FaultSchedule,
  type FaultScheduleOptions,
  FaultState,
  faultBudget,
  generateFaultSchedule,
} from "./fault-schedule.js";
export {
  assertWellFormed,
  completed,
  type History,
  type Operation,
  type Outcome,
  timedOut,
} from "./history.js";
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
  type KvMix,
  type KvTarget,
  KvWorkload,
  type KvWorkloadCounters,
  type KvWorkloadOptions,
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
export { regressionSeeds } from "./regression-seeds.js";
export { runtimeCluster } from "./runtime-cluster.js";
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
  replayLine,
  SimArgsError,
  type SimLevel,
  type SimOptions,
  simOptionsFromSeed,
} from "./sim-options.js";
export {
  runSimulation,
  runSimulationAsync,
  runUntilAsync,
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
