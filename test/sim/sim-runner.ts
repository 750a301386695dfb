// The skeleton of one simulation run, generic over the cluster under test: derive everything from
// the options, wire scheduler, network, fault schedule and KV workload, run the safety phase and the
// liveness phase, then run every checker and print a report that starts with the replay line. The
// real cluster harness (core + runtime over simulated disk and network) plugs in as a `SimCluster`.
import { Prng } from "../../src/util/prng.js";
import { type FaultTarget, injectFaults } from "./fault-injector.js";
import { describeFaultSchedule, type FaultEvent, generateFaultSchedule } from "./fault-schedule.js";
import { type KvOperation, kvModel } from "./kv-model.js";
import { type KvTarget, KvWorkload, type KvWorkloadCounters } from "./kv-workload.js";
import { type CheckResult, checkLinearizable } from "./linearizability.js";
import { checkRaftSafety, type RaftObservation, type RaftViolation } from "./raft-safety.js";
import { Scheduler } from "./scheduler.js";
import { type NetworkCounters, SimNetwork } from "./sim-network.js";
import { describeSimOptions, replayLine, type SimOptions } from "./sim-options.js";

/** A simulated cluster as the runner sees it. */
export interface SimCluster<M> extends FaultTarget {
  /** Receives a message the network delivers. */
  deliver(from: number, to: number, message: M): void;
  /** Where the workload sends its operations. */
  readonly kv: KvTarget;
  /** Everything the cluster observed about Raft (see raft-safety.ts), in order. */
  observations(): readonly RaftObservation[];
  /** After the liveness phase: problems with convergence (nodes disagreeing, no leader, lagging). */
  convergenceProblems(): readonly string[];
}

/** What a cluster factory gets: the shared clock, the network to send on, and its own random stream. */
export interface SimEnvironment<M> {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork<M>;
  readonly prng: Prng;
  readonly options: SimOptions;
}

/** Everything a run produced, and whether it passed. */
export interface SimReport {
  readonly ok: boolean;
  readonly replay: string;
  readonly history: readonly KvOperation[];
  readonly linearizability: CheckResult;
  readonly raftViolations: readonly RaftViolation[];
  readonly convergenceProblems: readonly string[];
  /** What the workload did (issued, answered, timed out, failed, late answers). */
  readonly workloadCounters: KvWorkloadCounters;
  readonly networkCounters: NetworkCounters;
  readonly faultsFired: readonly FaultEvent[];
  /** The whole report as text, replay line first. */
  readonly text: string;
}

/** Extra time after the liveness phase for open operations to time out, so the history is final. */
const drainSlackMs = 1;

/** Everything one run wires together before its phases run. */
interface RunParts<M> {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork<M>;
  readonly cluster: SimCluster<M>;
  readonly schedule: ReturnType<typeof generateFaultSchedule>;
  readonly workload: KvWorkload;
  readonly faultsFired: FaultEvent[];
}

function setUp<M>(options: SimOptions, makeCluster: (env: SimEnvironment<M>) => SimCluster<M>): RunParts<M> {
  const scheduler = new Scheduler();
  let cluster: SimCluster<M> | undefined;
  const nodes = Array.from({ length: options.clusterSize }, (_, i) => i + 1);
  const network = new SimNetwork<M>(
    scheduler,
    new Prng(options.networkSeed),
    nodes,
    options.network,
    (from, to, m) => cluster?.deliver(from, to, m),
  );
  const built = makeCluster({ scheduler, network, prng: new Prng(options.diskSeed), options });
  cluster = built;

  const schedule = generateFaultSchedule(options.faultSeed, options.faults);
  const faultsFired: FaultEvent[] = [];
  injectFaults(scheduler, schedule, network, built, (e) => faultsFired.push(e));

  const workload = new KvWorkload(scheduler, new Prng(options.workloadSeed), built.kv, options.workload);
  workload.start();
  return { scheduler, network, cluster: built, schedule, workload, faultsFired };
}

/** Runs one simulation with `options` against the cluster `makeCluster` builds. Deterministic. */
export function runSimulation<M>(
  options: SimOptions,
  makeCluster: (env: SimEnvironment<M>) => SimCluster<M>,
): SimReport {
  const parts = setUp(options, makeCluster);
  const { scheduler, schedule, workload } = parts;
  scheduler.runUntil(schedule.safetyEndMs);
  scheduler.runUntil(schedule.livenessEndMs);
  workload.stop();
  scheduler.runUntil(schedule.livenessEndMs + options.workload.opTimeoutMs + drainSlackMs);
  return finish(options, parts, parts.cluster.convergenceProblems());
}

/** Lets every pending promise reaction run: the code of the simulated nodes between two events. */
const settleMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs events one at a time up to `targetMs`, letting the promise reactions each event triggers run
 * before the next event (so asynchronous code completes when the event queue says, and only then).
 * Stops early once `until` holds.
 */
export async function runUntilAsync(
  scheduler: Scheduler,
  targetMs: number,
  until: () => boolean = () => false,
): Promise<void> {
  await settleMicrotasks();
  for (;;) {
    if (until()) return;
    const before = scheduler.executedEvents;
    let first = true;
    // The predicate is checked before each event: false once (run one event), then true.
    scheduler.runUntil(() => {
      if (!first) return true;
      first = false;
      return false;
    }, targetMs);
    if (scheduler.executedEvents === before) return;
    await settleMicrotasks();
  }
}

/**
 * Like {@link runSimulation}, for clusters whose code is asynchronous (the real runtime): the
 * scheduler advances one event at a time and promise reactions run in between. After the workload
 * stops, the cluster gets up to `settleMs` to converge before its convergence is judged.
 */
export async function runSimulationAsync<M>(
  options: SimOptions,
  makeCluster: (env: SimEnvironment<M>) => SimCluster<M>,
  settleMs: number,
): Promise<SimReport> {
  const parts = setUp(options, makeCluster);
  const { scheduler, schedule, workload, cluster } = parts;
  await runUntilAsync(scheduler, schedule.safetyEndMs);
  await runUntilAsync(scheduler, schedule.livenessEndMs);
  workload.stop();
  await runUntilAsync(scheduler, schedule.livenessEndMs + options.workload.opTimeoutMs + drainSlackMs);
  const settleEndMs = scheduler.nowMs + settleMs;
  await runUntilAsync(scheduler, settleEndMs, () => cluster.convergenceProblems().length === 0);
  return finish(options, parts, cluster.convergenceProblems());
}

function finish<M>(
  options: SimOptions,
  parts: RunParts<M>,
  convergenceProblems: readonly string[],
): SimReport {
  const { workload, network, schedule, faultsFired } = parts;
  const built = parts.cluster;
  const history = workload.history();
  const linearizability = checkLinearizable(kvModel, history);
  const raftViolations = checkRaftSafety(built.observations());
  // An undecided linearizability check fails the run too: someone has to look at it.
  const ok =
    linearizability.kind === "linearizable" &&
    raftViolations.length === 0 &&
    convergenceProblems.length === 0 &&
    workload.counters.idempotencyViolations === 0;

  const lines = [`${ok ? "PASS" : "FAIL"} ${replayLine(options)}`, describeSimOptions(options)];
  lines.push(
    `workload: ${JSON.stringify(workload.counters)}; network: ${JSON.stringify(network.counters)}; faults fired: ${faultsFired.length}`,
  );
  switch (linearizability.kind) {
    case "linearizable":
      lines.push(`linearizability: ok (${history.length} operations, ${linearizability.steps} search steps)`);
      break;
    case "unknown":
      lines.push(`linearizability: unknown (${linearizability.reason})`);
      break;
    case "not-linearizable":
      lines.push(linearizability.explanation);
      break;
  }
  for (const v of raftViolations) lines.push(`raft ${v.kind}: ${v.message}`);
  for (const p of convergenceProblems) lines.push(`convergence: ${p}`);
  if (workload.counters.idempotencyViolations > 0) {
    lines.push(
      `idempotency: ${workload.counters.idempotencyViolations} retries answered differently from the first attempt`,
    );
  }
  if (!ok) lines.push("fault schedule:", describeFaultSchedule(schedule));
  return {
    ok,
    replay: replayLine(options),
    history,
    linearizability,
    raftViolations,
    convergenceProblems,
    workloadCounters: { ...workload.counters },
    networkCounters: { ...network.counters },
    faultsFired,
    text: lines.join("\n"),
  };
}
