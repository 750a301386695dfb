// The skeleton of one simulation run, generic over the cluster under test: derive everything from
// the options, wire scheduler, network, fault schedule and KV workload, run the safety phase and the
// liveness phase, then run every checker and print a report that starts with the replay line. The
// real cluster harness (core + runtime over simulated disk and network) plugs in as a `SimCluster`.
import { Prng } from "../../src/util/prng.js";
import { type FaultInjector, type FaultTarget, type FiredFault, injectFaults } from "./fault-injector.js";
import { describeFaultEvent, describeFaultSchedule, generateFaultSchedule } from "./fault-schedule.js";
import type { Operation } from "./history.js";
import type { KvInput, KvOutput } from "./kv-model.js";
import {
  type KvDialect,
  type KvOpKind,
  type KvTarget,
  KvWorkload,
  type KvWorkloadCounters,
} from "./kv-workload.js";
import type { CheckResult } from "./linearizability.js";
import { checkRaftSafety, type RaftObservation, type RaftViolation } from "./raft-safety.js";
import { Scheduler } from "./scheduler.js";
import { type NetworkCounters, SimNetwork } from "./sim-network.js";
import { describeSimOptions, replayLine, type SimOptions } from "./sim-options.js";

/** A second workload a cluster may run beside the key-value one (level 2's streams). */
export interface SideWorkload {
  start(): void;
  /** Stops issuing new requests (with the key-value workload). */
  stop(): void;
  /** Once the run has settled: what its checkers found (each a failure of the run). */
  problems(): readonly string[];
  /** What it did, for the report. */
  readonly counters: Readonly<Record<string, number>>;
}

/** A key-value request as the workload builds it, in any dialect. */
export type KvRequest = { readonly op: KvOpKind; readonly key: string };

/** A simulated cluster as the runner sees it; `I` and `O` are its key-value dialect's requests and answers. */
export interface SimCluster<M, I = KvInput, O = KvOutput> extends FaultTarget {
  /** Receives a message the network delivers. */
  deliver(from: number, to: number, message: M): void;
  /** Where the workload sends its operations. */
  readonly kv: KvTarget<I, O>;
  /** Everything the cluster observed about Raft (see raft-safety.ts), in order. */
  observations(): readonly RaftObservation[];
  /**
   * After the liveness phase: problems with convergence (nodes disagreeing, no leader, lagging).
   * `compareState: false` skips comparing the replicas' states: a cheap check to wait on.
   */
  convergenceProblems(compareState?: boolean): readonly string[];
  /** What the cluster counted (snapshots sent, installed ...), for the report. */
  readonly counters?: Readonly<Record<string, number>>;
  /** Failures the cluster survived (a snapshot it could not store ...), printed with the report. */
  notes?(): readonly string[];
  /** A workload the cluster runs besides the key-value one, if any. */
  readonly sideWorkload?: SideWorkload | undefined;
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
  /** The key-value history, in the dialect of the level. */
  readonly history: readonly Operation<unknown, unknown>[];
  readonly linearizability: CheckResult;
  readonly raftViolations: readonly RaftViolation[];
  readonly convergenceProblems: readonly string[];
  /** What the side workload's checkers found (streams and consumer groups at level 2). */
  readonly streamProblems: readonly string[];
  /** What the workload did (issued, answered, timed out, failed, late answers). */
  readonly workloadCounters: KvWorkloadCounters;
  readonly networkCounters: NetworkCounters;
  /** What the cluster counted, if it counts anything. */
  readonly clusterCounters: Readonly<Record<string, number>>;
  /** What the side workload did (streams at level 2), if there is one. */
  readonly sideCounters: Readonly<Record<string, number>>;
  /** The faults as they fired (real node ids, time, whom an aimed one hit). */
  readonly faultsFired: readonly FiredFault[];
  /** The whole report as text, replay line first. */
  readonly text: string;
}

/** Extra time after the liveness phase for open operations to time out, so the history is final. */
const drainSlackMs = 1;

/** Everything one run wires together before its phases run. */
interface RunParts<M, I extends KvRequest, O> {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork<M>;
  readonly cluster: SimCluster<M, I, O>;
  readonly schedule: ReturnType<typeof generateFaultSchedule>;
  readonly workload: KvWorkload<I, O>;
  readonly dialect: KvDialect<I, O>;
  readonly injector: FaultInjector;
}

function setUp<M, I extends KvRequest, O>(
  options: SimOptions,
  makeCluster: (env: SimEnvironment<M>) => SimCluster<M, I, O>,
  dialect: KvDialect<I, O>,
): RunParts<M, I, O> {
  const scheduler = new Scheduler({ eventsMax: options.eventsMax });
  let cluster: SimCluster<M, I, O> | undefined;
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
  const injector = injectFaults(scheduler, schedule, network, built);

  const workload = new KvWorkload(
    scheduler,
    new Prng(options.workloadSeed),
    built.kv,
    options.workload,
    dialect,
  );
  workload.start();
  built.sideWorkload?.start();
  return { scheduler, network, cluster: built, schedule, workload, dialect, injector };
}

/**
 * Runs one simulation with `options` against the cluster `makeCluster` builds, its key-value history
 * checked against `dialect`'s model. Deterministic.
 */
export function runSimulation<M, I extends KvRequest, O>(
  options: SimOptions,
  makeCluster: (env: SimEnvironment<M>) => SimCluster<M, I, O>,
  dialect: KvDialect<I, O>,
): SimReport {
  const parts = setUp(options, makeCluster, dialect);
  const { scheduler, schedule, workload, injector } = parts;
  scheduler.afterEvent = () => injector.poll();
  scheduler.runUntil(schedule.safetyEndMs);
  scheduler.runUntil(schedule.livenessEndMs);
  workload.stop();
  parts.cluster.sideWorkload?.stop();
  scheduler.runUntil(schedule.livenessEndMs + options.workload.opTimeoutMs + drainSlackMs);
  return finish(options, parts, parts.cluster.convergenceProblems());
}

/** Lets every pending promise reaction run: the code of the simulated nodes between two events. */
const settleMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs events one at a time up to `targetMs`, letting the promise reactions each event triggers run
 * before the next event (so asynchronous code completes when the event queue says, and only then).
 * Stops early once `until` holds. `afterEvent` runs once the reactions of each event have run.
 */
export async function runUntilAsync(
  scheduler: Scheduler,
  targetMs: number,
  until: () => boolean = () => false,
  afterEvent: () => void = () => {},
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
    afterEvent();
  }
}

/**
 * Like {@link runSimulation}, for clusters whose code is asynchronous (the real runtime): the
 * scheduler advances one event at a time and promise reactions run in between. After the workload
 * stops, the cluster gets up to `settleMs` to converge before its convergence is judged.
 */
export async function runSimulationAsync<M, I extends KvRequest, O>(
  options: SimOptions,
  makeCluster: (env: SimEnvironment<M>) => SimCluster<M, I, O>,
  dialect: KvDialect<I, O>,
  settleMs: number,
): Promise<SimReport> {
  const parts = setUp(options, makeCluster, dialect);
  const { scheduler, schedule, workload, cluster, injector } = parts;
  const poll = () => injector.poll();
  await runUntilAsync(scheduler, schedule.safetyEndMs, undefined, poll);
  await runUntilAsync(scheduler, schedule.livenessEndMs);
  workload.stop();
  cluster.sideWorkload?.stop();
  await runUntilAsync(scheduler, schedule.livenessEndMs + options.workload.opTimeoutMs + drainSlackMs);
  const settleEndMs = scheduler.nowMs + settleMs;
  await runUntilAsync(scheduler, settleEndMs, () => cluster.convergenceProblems(false).length === 0);
  return finish(options, parts, cluster.convergenceProblems());
}

function finish<M, I extends KvRequest, O>(
  options: SimOptions,
  parts: RunParts<M, I, O>,
  convergenceProblems: readonly string[],
): SimReport {
  const { workload, network, schedule, injector } = parts;
  const faultsFired = injector.fired;
  const built = parts.cluster;
  const history = workload.history();
  const linearizability = parts.dialect.check(history);
  const raftViolations = checkRaftSafety(built.observations());
  const side = built.sideWorkload;
  const streamProblems = side?.problems() ?? [];
  // An undecided linearizability check fails the run too: someone has to look at it.
  const ok =
    linearizability.kind === "linearizable" &&
    raftViolations.length === 0 &&
    convergenceProblems.length === 0 &&
    streamProblems.length === 0 &&
    workload.counters.idempotencyViolations === 0;

  const lines = [`${ok ? "PASS" : "FAIL"} ${replayLine(options)}`, describeSimOptions(options)];
  lines.push(
    `workload: ${JSON.stringify(workload.counters)}; network: ${JSON.stringify(network.counters)}; faults fired: ${faultsFired.length}; events: ${parts.scheduler.executedEvents}`,
  );
  if (built.counters !== undefined) lines.push(`cluster: ${JSON.stringify(built.counters)}`);
  if (side !== undefined) lines.push(`streams: ${JSON.stringify(side.counters)}`);
  for (const note of built.notes?.() ?? []) lines.push(`incident: ${note}`);
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
  for (const p of streamProblems) lines.push(`streams: ${p}`);
  if (workload.counters.idempotencyViolations > 0) {
    lines.push(
      `idempotency: ${workload.counters.idempotencyViolations} retries answered differently from the first attempt`,
    );
  }
  if (!ok) {
    lines.push("fault schedule:", describeFaultSchedule(schedule));
    lines.push("faults as they fired (real nodes):");
    for (const f of faultsFired) {
      const late =
        f.firedMs === f.scheduled.atMs
          ? ""
          : ` fired at ${f.firedMs}ms${f.missedMoment === true ? " (its moment never came)" : ""}`;
      const note = f.note === undefined ? "" : ` ${f.note}`;
      lines.push(`${describeFaultEvent(f.resolved)}${late}${note}`);
    }
  }
  return {
    ok,
    replay: replayLine(options),
    history,
    linearizability,
    raftViolations,
    convergenceProblems,
    streamProblems,
    workloadCounters: { ...workload.counters },
    networkCounters: { ...network.counters },
    clusterCounters: { ...built.counters },
    sideCounters: { ...side?.counters },
    faultsFired: [...faultsFired],
    text: lines.join("\n"),
  };
}
