// One fault run against real processes: start the cluster, run the key-value (and, for Cairn, the
// stream) workload from the simulator while the nemesis follows the seeded schedule, stop, heal,
// and check: the KV history is linearizable, every stream holds every acknowledged append once and
// in one order on every node, the consumer group lost nothing, and every node converged to the same
// state. The same seed gives the same workload choices and the same fault schedule.
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Prng } from "../../src/util/prng.js";
import type { Operation } from "../sim/history.js";
import {
  type ServiceKvInput,
  type ServiceKvOutput,
  serviceKvDialect,
  serviceKvModel,
} from "../sim/kv-service-model.js";
import { type KvTarget, KvWorkload, type KvWorkloadCounters } from "../sim/kv-workload.js";
import { checkLinearizable } from "../sim/linearizability.js";
import { StreamWorkload, type StreamWorkloadOptions } from "../sim/stream-workload.js";
import {
  AvailabilityLog,
  type AvailabilitySummary,
  type OperationSummary,
  summarizeOperations,
} from "./availability.js";
import { CairnCluster } from "./cairn-cluster.js";
import { checkConvergence } from "./cairn-convergence.js";
import { CairnKvTarget } from "./cairn-kv-target.js";
import { CairnStreamTarget } from "./cairn-stream-target.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { EtcdKvTarget } from "./etcd-kv-target.js";
import type { FaultCluster } from "./fault-cluster.js";
import { type AppliedFault, Nemesis } from "./nemesis.js";
import { RealClock } from "./real-clock.js";
import { describeFault, type FaultKind, faultSchedule, type ScheduledFault } from "./schedule.js";

/** The system a run drives. */
export type SystemName = "cairn" | "etcd";

/** Everything a run varies. */
export interface FaultRunOptions {
  readonly system: SystemName;
  readonly seed: number;
  /** How long the workload runs; faults stop a few seconds before. */
  readonly seconds: number;
  readonly nodes: 3 | 5;
  readonly kinds: readonly FaultKind[];
  /** Concurrent key-value clients, and the keys they share. */
  readonly clients: number;
  readonly keys: number;
  /** A client's timeout per request. */
  readonly timeoutMs: number;
  /** The stream workload (Cairn only). */
  readonly streams: boolean;
  /** A disk delay every Cairn node has throughout (0: none); the slow-disk fault adds to it. */
  readonly diskDelayMs: number;
  /** Cairn nodes run the compiled build instead of the sources through tsx. */
  readonly build?: boolean;
  /**
   * Applied entries between a Cairn node's log compactions; undefined: 500 with the corrupt fault
   * (so there are compactions, and snapshots to damage), the node's default otherwise. A leader
   * keeps the log a follower lacks up to 4 times this, then captures a snapshot for it.
   */
  readonly snapshotEntries?: number | undefined;
  /** Receives progress lines. */
  readonly say: (line: string) => void;
}

/** What a run did and found. */
export interface FaultRunReport {
  readonly system: SystemName;
  readonly seed: number;
  readonly schedule: readonly ScheduledFault[];
  readonly applied: readonly AppliedFault[];
  readonly kv: KvWorkloadCounters & { readonly operations: number; readonly checkerSteps: number };
  readonly streams: Readonly<Record<string, number>> | undefined;
  readonly availability: AvailabilitySummary;
  /** The same run per logical operation, retries included. */
  readonly operations: OperationSummary;
  /** The same figures by situation: during each kind of fault, to a struck node or another; between faults. */
  readonly availabilityBreakdown: ReadonlyMap<string, AvailabilitySummary>;
  /** Every violation found; empty when the run passed. */
  readonly problems: readonly string[];
  /** Where the nodes' logs were saved when the run failed. */
  readonly logFile: string | undefined;
}

/** Seconds at the end of a run without faults, so the last one heals before the workload stops. */
const faultFreeTailSeconds = 3;

/** The schedule a run follows (a pure function of its options). */
export function scheduleOf(options: Pick<FaultRunOptions, "seed" | "seconds" | "kinds">): ScheduledFault[] {
  return faultSchedule({
    seed: options.seed,
    durationMs: Math.max(0, options.seconds - faultFreeTailSeconds) * 1000,
    kinds: options.kinds,
    quietMinMs: 1_000,
    quietMaxMs: 4_000,
    holdMinMs: 1_000,
    holdMaxMs: 6_000,
  });
}

/** The stream workload's settings: a few producers, one reader, two consumers. */
function streamOptions(timeoutMs: number): StreamWorkloadOptions {
  return {
    streams: 2,
    producers: 3,
    messagesMax: 1_000_000,
    readers: 1,
    consumers: 2,
    fetchMax: 5,
    ackWaitMs: 3_000,
    maxDeliveries: 3,
    timeoutMs: timeoutMs + 1_000,
    retriesMax: 5,
    thinkMaxMs: 50,
    settleMix: { ack: 6, nack: 2, term: 1, ignore: 1 },
  };
}

/** The `cairn node` flags a run adds for every node. */
function cairnArgs(options: FaultRunOptions): string[] {
  // Damage needs something to land on: snapshots and sealed WAL segments within a minute.
  const corrupt = options.kinds.includes("corrupt");
  const snapshotEntries = options.snapshotEntries ?? (corrupt ? 500 : undefined);
  return [
    ...(snapshotEntries !== undefined
      ? [
          "--snapshot-entries",
          String(snapshotEntries),
          "--snapshot-log-entries-max",
          String(Math.min(4 * snapshotEntries, 100_000_000)),
        ]
      : []),
    ...(corrupt ? ["--segment-bytes-max", "65536"] : []),
  ];
}

/**
 * A started cluster for the run. Its ports are picked free but only bound when its nodes start, so
 * on a busy machine another process can take one in between (EADDRINUSE): then the cluster is made
 * again on other ports, up to 3 times. The nodes have done nothing yet, so the run is unchanged.
 */
async function startCluster(options: FaultRunOptions): Promise<FaultCluster> {
  for (let attempt = 1; ; attempt++) {
    const cluster: FaultCluster =
      options.system === "cairn"
        ? await CairnCluster.create({
            size: options.nodes,
            diskDelayMs: options.diskDelayMs,
            build: options.build === true,
            extraArgs: cairnArgs(options),
          })
        : await EtcdCluster.create({ size: options.nodes });
    try {
      await cluster.start();
      return cluster;
    } catch (error) {
      await cluster.close();
      if (attempt >= 3 || !String(error).includes("EADDRINUSE")) throw error;
    }
  }
}

/** Runs one fault run and reports; every process it started is stopped before it returns. */
export async function runFaults(options: FaultRunOptions): Promise<FaultRunReport> {
  const { say } = options;
  const schedule = scheduleOf(options);
  say(
    `${options.system}: seed ${options.seed}, ${options.seconds} s, ${options.nodes} nodes, ${schedule.length} faults:`,
  );
  say(
    `  ${schedule.map((s) => `${(s.atMs / 1000).toFixed(1)}s ${describeFault(s.fault)} (${s.holdMs} ms)`).join("; ")}`,
  );
  const cluster = await startCluster(options);
  const problems: string[] = [];
  const clock = new RealClock();
  const prng = new Prng(options.seed);
  const log = new AvailabilityLog(() => clock.nowMs);
  const targetPrng = prng.fork();
  const target: KvTarget<ServiceKvInput, ServiceKvOutput> =
    options.system === "cairn"
      ? new CairnKvTarget({ urls: cluster.urls, prng: targetPrng, timeoutMs: options.timeoutMs, log })
      : new EtcdKvTarget({ urls: cluster.urls, prng: targetPrng, timeoutMs: options.timeoutMs, log });
  const kv = new KvWorkload(
    clock,
    prng.fork(),
    target,
    {
      clients: options.clients,
      keys: options.keys,
      operationsMax: Number.MAX_SAFE_INTEGER,
      mix: { get: 4, put: 3, putIf: 2, delete: 1, incr: 2 },
      // The target gives up first (and says so), so a timeout is always the target's.
      opTimeoutMs: options.timeoutMs + 1_000,
      thinkMinMs: 0,
      thinkMaxMs: 10,
      retryBackoffMs: 50,
      retriesMax: 2,
      // Cairn retries with the same idempotency key, so a retry never applies twice; etcd has no
      // such key, so each of its attempts is an operation of its own in the history.
      idempotentRetries: options.system === "cairn",
    },
    serviceKvDialect,
  );
  const streamPrng = prng.fork();
  const streamTarget =
    options.system === "cairn" && options.streams
      ? new CairnStreamTarget({
          urls: cluster.urls,
          prng: streamPrng.fork(),
          timeoutMs: options.timeoutMs,
          streams: 2,
        })
      : undefined;
  const streams =
    streamTarget === undefined
      ? undefined
      : new StreamWorkload(clock, streamPrng.fork(), streamTarget, streamOptions(options.timeoutMs));
  const nemesis = new Nemesis(cluster, clock, (line) => say(`  ${line}`));
  let history: Operation<ServiceKvInput, ServiceKvOutput>[] = [];
  let checkerSteps = 0;
  let availability = log.summary();
  let operations = summarizeOperations([]);
  let availabilityBreakdown = log.breakdown([]);
  let logFile: string | undefined;
  try {
    try {
      clock.reset();
      kv.start();
      streams?.start();
      const faults = nemesis.run(schedule);
      // A fault that cannot be healed (a node that will not restart) ends the run at once, as a
      // problem of the run, instead of surfacing later as an unhandled rejection.
      const faultFailed = faults.then(() => new Promise<never>(() => undefined));
      await Promise.race([
        new Promise((resolve) => setTimeout(resolve, options.seconds * 1000)),
        faultFailed,
      ]);
      kv.stop();
      streams?.stop();
      nemesis.stop();
      await faults;
      await healEverything(cluster, nemesis);
      await waitUntil(() => kv.done, 60_000);
      clock.cancelAll();

      // The clients' figures, before the checks' own requests.
      availability = log.summary();
      operations = summarizeOperations(kv.operationLatencies());
      availabilityBreakdown = log.breakdown(nemesis.applied);
      say(`${options.system}: healed; checking`);
      history = [...kv.history(), ...(await finalReads(target, options.keys, clock))];
      const check = checkLinearizable(serviceKvModel, history, { stepsMax: 50_000_000 });
      checkerSteps = check.steps;
      if (check.kind === "not-linearizable")
        problems.push(`KV history not linearizable:\n${check.explanation}`);
      if (check.kind === "unknown") problems.push(`KV linearizability check inconclusive: ${check.reason}`);
      if (kv.counters.idempotencyViolations > 0) {
        problems.push(
          `${kv.counters.idempotencyViolations} retries with one idempotency key got different answers`,
        );
      }
      if (streamTarget !== undefined && streams !== undefined) {
        await streamTarget.collect();
        problems.push(...streams.problems());
      }
      if (options.system === "cairn") problems.push(...(await checkConvergence(cluster.urls)));
    } catch (error) {
      // A node that cannot restart, a cluster that never answers again: the run failed as surely as
      // a checker would have failed it.
      problems.push(
        `the run stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
    clock.cancelAll();
    if (problems.length > 0) {
      logFile = join(tmpdir(), `cairn-faults-${options.system}-${options.seed}.log`);
      await writeFile(
        logFile,
        `${problems.join("\n\n")}\n\n${nemesis.applied.map((a) => JSON.stringify(a)).join("\n")}\n\n${cluster.logs()}`,
      );
    }
    return {
      system: options.system,
      seed: options.seed,
      schedule,
      applied: nemesis.applied,
      kv: { ...kv.counters, operations: history.length, checkerSteps },
      streams: streams?.counters,
      availability,
      operations,
      availabilityBreakdown,
      problems,
      logFile,
    };
  } finally {
    nemesis.stop();
    await cluster.close();
  }
}

/** Ends every fault: the one in force, and anything a failed heal left behind. */
async function healEverything(cluster: FaultCluster, nemesis: Nemesis): Promise<void> {
  await nemesis.healAll();
  cluster.healLinks();
  for (let node = 0; node < cluster.size; node++) {
    if (cluster.isRunning(node)) cluster.resume(node);
    else await cluster.restart(node);
    if (cluster.supportsSlowDisk) await cluster.healDisk(node);
  }
  // A node whose files were damaged refills from its peers on its own; the checks read every node's
  // own copy, which a recovering node does not serve. One that never heals fails the convergence check.
  const deadline = performance.now() + 60_000;
  while (!(await cluster.allWhole()) && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 200));
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/**
 * After the heal, one linearizable read of every key, added to the history: an acknowledged write
 * lost after the last client read it shows up here.
 */
async function finalReads(
  target: KvTarget<ServiceKvInput, ServiceKvOutput>,
  keys: number,
  clock: RealClock,
): Promise<Operation<ServiceKvInput, ServiceKvOutput>[]> {
  const out: Operation<ServiceKvInput, ServiceKvOutput>[] = [];
  for (let k = 0; k < keys; k++) {
    const input: ServiceKvInput = { op: "get", key: `k${k}` };
    for (let attempt = 0; attempt < 40; attempt++) {
      const callMs = clock.nowMs;
      const output = await new Promise<ServiceKvOutput | undefined>((resolve) =>
        target.submit(
          -1,
          input,
          (r) => resolve(r.kind === "ok" ? r.output : undefined),
          `final-${k}-${attempt}`,
        ),
      );
      if (output !== undefined) {
        out.push({ clientId: -1, input, callMs, outcome: { kind: "ok", output, returnMs: clock.nowMs } });
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return out;
}
