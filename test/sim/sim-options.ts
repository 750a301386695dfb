// Everything a simulation run varies, derived from (seed, level) alone, so one printed line replays a
// run exactly: `npm run sim -- --seed 1234 --level 1`.
import { assert } from "../../src/util/assert.js";
import { Prng } from "../../src/util/prng.js";
import type { FaultScheduleOptions } from "./fault-schedule.js";
import type { KvWorkloadOptions } from "./kv-workload.js";
import type { NetworkOptions, Probability } from "./sim-network.js";
import type { StreamRetention } from "./stream-checker.js";
import type { StreamWorkloadOptions } from "./stream-workload.js";

/**
 * Which simulator and how hard it pushes: 0 a short calm smoke run of the Raft cores, 1 short runs
 * of the Raft cores under every fault (thousands of seeds a minute), 2 the real runtime and storage
 * over the simulated disk, with harsher network settings and somewhat longer runs.
 */
export type SimLevel = 0 | 1 | 2;

/** The simulated disk's behaviour. */
export interface DiskOptions {
  /** fsync latency, uniform in [min, max]. */
  readonly syncLatencyMinMs: number;
  readonly syncLatencyMaxMs: number;
  /** On a crash, the chance that each write not yet fsynced is lost. */
  readonly lostUnsyncedOnCrash: Probability;
  /** On a crash, the chance that the last unsynced write is torn (partly written). */
  readonly tornWriteOnCrash: Probability;
}

/** How level 2 sets up each node's runtime and storage. */
export interface RuntimeOptions {
  /**
   * Take a snapshot (and compact the log) every this many applied entries; undefined for none, in
   * which case the state machine lives in memory and is rebuilt from the whole log on restart. With
   * snapshots the state lives in a MemoryStateStore that survives crashes (its commits in flight do
   * not), as lmdb would. Level 1 uses it too: each core compacts its log every this many applied
   * entries into a snapshot of its KV model's state (3/4 of runs, 8-64 entries). Level 2 takes 6-32:
   * its clusters commit only tens of entries a second under its faults, and the snapshot paths
   * (captures beside apply, transfers, installs and their races) need many compactions per run.
   */
  readonly snapshotEntries: number | undefined;
  /** The WAL's segment size: small, so segments roll and compaction deletes them whole. */
  readonly segmentBytesMax: number;
  /** Latency of a state store commit. */
  readonly storeCommitMaxMs: number;
  /** The most entry bytes in one append message (small sizes split a leader's tail over several). */
  readonly appendBytesMax: number;
  /**
   * How long a state store flush takes at most (each node draws its own, from 1 ms): as lmdb, a
   * commit is visible once it completes and durable only once a later flush completes, and a crash
   * is a power loss that takes back every commit no flush covered.
   */
  readonly storeFlushMaxMs: number;
  /** How long applied effects wait in the runtime before one store transaction takes them (`cairn node`: 50). */
  readonly storeBatchMs: number;
  /**
   * The chance that a node receiving or installing a snapshot loses power meanwhile or just after
   * (during the safety phase, while the nodes down stay a minority); it restarts 20-300 ms later.
   */
  readonly snapshotCrash: Probability;
  /**
   * A snapshot capture takes up to this much longer (uniformly) before it compacts the log: the
   * time a large state's file takes to write, which the simulator's small states do not. A capture
   * then runs long beside the ready loop, and a snapshot from the leader can be installed meanwhile.
   */
  readonly captureExtraMaxMs: number;
  /**
   * Whether captures are raced by installs (issue 12, bug 3): a follower that starts a capture in
   * the safety phase is cut off until the leader compacted past its log (one follower at a time,
   * while the nodes down stay a minority), and its capture is held until it has installed the
   * snapshot the leader then sends, finishing within 2 ms after the install compacted the log
   * further. Left to chance, a capture almost never overlaps an install: a follower that captures
   * is up to date, and one that gets snapshots lags and does not capture.
   */
  readonly captureRace: boolean;
  /**
   * The chance that a node which just acknowledged entries or granted a vote (a promise that its
   * disk holds them) loses power within 2 ms, during the safety phase while the nodes down stay a
   * minority; it restarts 20-300 ms later. Random crashes rarely land between a write and its
   * fsync, the moment that shows whether the acknowledgement waited for the disk.
   */
  readonly ackCrash: Probability;
  /**
   * A leader keeps the log a follower lacks for up to this many compaction intervals (the node's
   * snapshotLogEntriesMax); 1: it never holds the log back.
   */
  readonly logHoldIntervals: number;
}

/** The options of one run. Every field follows from `seed` and `level`. */
export interface SimOptions {
  readonly seed: number;
  readonly level: SimLevel;
  readonly clusterSize: 3 | 5;
  /** Seeds of the components that draw their own random streams. */
  readonly networkSeed: number;
  readonly faultSeed: number;
  readonly workloadSeed: number;
  readonly diskSeed: number;
  readonly network: NetworkOptions;
  readonly disk: DiskOptions;
  readonly faults: FaultScheduleOptions;
  readonly workload: KvWorkloadOptions;
  /** Level 2's runtime and storage settings (levels 0 and 1 use only `snapshotEntries`). */
  readonly runtime: RuntimeOptions;
  /** Level 2: the stream workload beside the key-value one, in half of the runs. */
  readonly streams: StreamWorkloadOptions | undefined;
  /**
   * Events a run may take before it fails as a runaway (a message storm, a livelock): far above what
   * any healthy run of the level needs (level 1 about 20,000, level 2 about 12,000 at most).
   */
  readonly eventsMax: number;
}

/** Thrown for bad simulator arguments. */
export class SimArgsError extends Error {
  override readonly name = "SimArgsError";
  readonly code = "ERR_SIM_ARGS";
}

const seedMax = Number.MAX_SAFE_INTEGER;

/** Derives a run's options from its seed and level. A pure function. */
export function simOptionsFromSeed(seed: number, level: SimLevel = 1): SimOptions {
  assert(Number.isSafeInteger(seed) && seed >= 0, `seed must be a non-negative safe integer, got ${seed}`);
  const root = new Prng(seed);
  // One stream per section, forked in a fixed order, so each section's draws are independent.
  const cluster = root.fork();
  const net = root.fork();
  const disk = root.fork();
  const faults = root.fork();
  const work = root.fork();
  const seeds = root.fork();
  const rt = root.fork();
  const st = root.fork();

  const clusterSize: 3 | 5 =
    level === 0 ? 3 : level === 2 ? (cluster.chance(3, 4) ? 5 : 3) : cluster.pick([3, 5] as const);

  // Rates as per-thousand numerators, ranges widening with the level.
  const lossMax = [0, 20, 100][level] ?? 0;
  const dupMax = [0, 10, 50][level] ?? 0;
  const reorderMax = [0, 50, 200][level] ?? 0;
  const latencyMinMs = net.range(1, 3);
  const network: NetworkOptions = {
    latencyMinMs,
    latencyMaxMs: latencyMinMs + net.range(0, [5, 20, 100][level] ?? 0),
    loss: [net.range(0, lossMax), 1000],
    duplicate: [net.range(0, dupMax), 1000],
    reorder: [net.range(0, reorderMax), 1000],
    reorderExtraMaxMs: net.range(0, [0, 30, 200][level] ?? 0),
    fifo: level === 0 || net.chance(1, 2),
    inflightMax: 100_000,
  };

  const syncLatencyMinMs = disk.range(0, 2);
  const diskOptions: DiskOptions = {
    syncLatencyMinMs,
    syncLatencyMaxMs: syncLatencyMinMs + disk.range(0, [2, 10, 40][level] ?? 0),
    lostUnsyncedOnCrash: level === 0 ? [0, 1] : [disk.range(1, 2), 2],
    tornWriteOnCrash: level === 0 ? [0, 1] : [disk.range(0, 1), level === 2 ? 2 : 4],
  };

  // Level 1 runs are short so that many seeds fit in a minute: many short runs explore more fault
  // interleavings than a few long ones.
  const safetyPhaseMs = [5_000, faults.range(2_000, 5_000), faults.range(3_000, 8_000)][level] ?? 5_000;
  const gapMinMs = [1_000, faults.range(50, 250), faults.range(50, 200)][level] ?? 1_000;
  const faultOptions: FaultScheduleOptions = {
    clusterSize,
    safetyPhaseMs,
    livenessPhaseMs: [5_000, 2_000, 3_000][level] ?? 5_000,
    gapMinMs,
    gapMaxMs: gapMinMs * faults.range(2, 6),
    slowDiskExtraMinMs: 5,
    slowDiskExtraMaxMs: faults.range(20, 200),
    // Level 1 replaces a restarting node's disk now and then (the vote fence's liveness and safety).
    ...(level === 1 ? { wipedRestartShare: [1, 2] as const } : {}),
  };

  const workload: KvWorkloadOptions = {
    clients: work.range(2, [3, 5, 8][level] ?? 3),
    keys: work.range(1, 4),
    operationsMax: [200, work.range(150, 500), work.range(200, 800)][level] ?? 200,
    mix: {
      get: work.range(1, 5),
      put: work.range(1, 5),
      putIf: work.range(0, 3),
      delete: work.range(0, 2),
      incr: work.range(0, 2),
    },
    opTimeoutMs: level === 1 ? work.range(300, 1_000) : work.range(500, 2_000),
    thinkMinMs: 0,
    thinkMaxMs: work.range(5, 50),
    retryBackoffMs: work.range(10, 100),
    retriesMax: work.range(0, 3),
    idempotentRetries: work.chance(3, 4),
  };

  return {
    seed,
    level,
    clusterSize,
    networkSeed: seeds.nextU32(),
    faultSeed: seeds.nextU32(),
    workloadSeed: seeds.nextU32(),
    diskSeed: seeds.nextU32(),
    network,
    disk: diskOptions,
    faults: faultOptions,
    workload,
    runtime: {
      snapshotEntries: rt.chance(3, 4) ? (level === 2 ? rt.range(6, 32) : rt.range(8, 64)) : undefined,
      segmentBytesMax: rt.pick([8 * 1024, 32 * 1024, 256 * 1024]),
      storeCommitMaxMs: rt.range(0, 5),
      appendBytesMax: rt.pick([256, 2 * 1024, 16 * 1024]),
      // Drawn after the others, so that adding them left the earlier draws of each seed alone.
      storeFlushMaxMs: rt.range(5, 50),
      storeBatchMs: rt.pick([0, 50]),
      snapshotCrash: [rt.range(2, 4), 4],
      captureExtraMaxMs: rt.pick([0, 200, 1_000]),
      captureRace: rt.chance(1, 2),
      ackCrash: [rt.range(1, 3), 1_000],
      logHoldIntervals: rt.pick([1, 1, 4]),
    },
    streams: streamOptions(st, level),
    eventsMax: level === 2 ? 150_000 : 1_000_000,
  };
}

/**
 * The stream workload of a run: at level 2, in half of the runs. In two of three, `s1` has retention
 * (and is there): at most 3-20 messages, or none older than 300-2,500 ms, so that trims come with
 * appends and from the leader's sweeps, and every message of the run is past its age while the
 * cluster settles.
 */
function streamOptions(prng: Prng, level: SimLevel): StreamWorkloadOptions | undefined {
  const drawn = {
    streams: prng.pick([1, 2] as const),
    producers: prng.range(1, 3),
    messagesMax: prng.range(30, 150),
    readers: prng.range(1, 2),
    consumers: prng.range(1, 3),
    fetchMax: prng.range(1, 5),
    ackWaitMs: prng.range(200, 1_000),
    maxDeliveries: prng.range(2, 4),
    timeoutMs: prng.range(500, 2_000),
    retriesMax: prng.range(1, 4),
    thinkMaxMs: prng.range(5, 50),
    settleMix: {
      ack: prng.range(4, 8),
      nack: prng.range(0, 2),
      term: prng.range(0, 1),
      ignore: prng.range(0, 2),
    },
  };
  const streamsRun = level === 2 && prng.chance(1, 2);
  // Drawn after the others, so that adding retention left the earlier draws of each seed alone.
  const retentionKind = prng.below(3);
  const maxMessages = prng.range(3, 20);
  const maxAgeMs = prng.range(300, 2_500);
  if (!streamsRun) return undefined;
  const retention: StreamRetention | undefined =
    retentionKind === 1 ? { maxMessages } : retentionKind === 2 ? { maxAgeMs } : undefined;
  return retention === undefined ? drawn : { ...drawn, streams: 2, retention };
}

/** The command that replays a run; the simulator prints it with every failure. */
export function replayLine(options: Pick<SimOptions, "seed" | "level">): string {
  return `npm run sim -- --seed ${options.seed} --level ${options.level}`;
}

/** Reads `--seed N` and `--level L` (both optional: seed from `defaultSeed`, level 1). */
export function parseSimArgs(
  argv: readonly string[],
  defaultSeed: number,
): { seed: number; level: SimLevel } {
  let seed = defaultSeed;
  let level: SimLevel = 1;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag !== "--seed" && flag !== "--level")
      throw new SimArgsError(`unknown argument ${JSON.stringify(flag)}`);
    if (value === undefined || !/^[0-9]+$/.test(value)) {
      throw new SimArgsError(`${flag} needs a non-negative integer, got ${JSON.stringify(value)}`);
    }
    const n = Number(value);
    if (flag === "--seed") {
      if (!Number.isSafeInteger(n) || n > seedMax) throw new SimArgsError(`--seed too large: ${value}`);
      seed = n;
    } else {
      if (n !== 0 && n !== 1 && n !== 2) throw new SimArgsError(`--level must be 0, 1 or 2, got ${value}`);
      level = n;
    }
    i++;
  }
  return { seed, level };
}

const ratio = ([n, d]: Probability) => `${n}/${d}`;

/** A short multi-line summary of a run's options, printed before it starts. */
export function describeSimOptions(o: SimOptions): string {
  const w = o.workload;
  return [
    `seed ${o.seed} level ${o.level}: ${o.clusterSize} nodes`,
    `network: latency ${o.network.latencyMinMs}-${o.network.latencyMaxMs}ms, loss ${ratio(o.network.loss)}, duplicate ${ratio(o.network.duplicate)}, reorder ${ratio(o.network.reorder)} (+${o.network.reorderExtraMaxMs}ms), ${o.network.fifo ? "fifo" : "unordered"} links`,
    `disk: fsync ${o.disk.syncLatencyMinMs}-${o.disk.syncLatencyMaxMs}ms, unsynced writes lost on crash ${ratio(o.disk.lostUnsyncedOnCrash)}, torn ${ratio(o.disk.tornWriteOnCrash)}`,
    `faults: safety phase ${o.faults.safetyPhaseMs}ms (a decision every ${o.faults.gapMinMs}-${o.faults.gapMaxMs}ms), liveness phase ${o.faults.livenessPhaseMs}ms`,
    ...(o.level === 2
      ? [
          `runtime: ${o.runtime.snapshotEntries === undefined ? "no snapshots (state in memory)" : `compaction every ${o.runtime.snapshotEntries} entries${o.runtime.logHoldIntervals > 1 ? `, the log a follower lacks kept up to ${o.runtime.logHoldIntervals}x that` : ""}`}, WAL segments of ${o.runtime.segmentBytesMax} bytes, state store commits 0-${o.runtime.storeCommitMaxMs}ms and flushes 1-${o.runtime.storeFlushMaxMs}ms (power loss takes back what no flush covered), applied effects batched ${o.runtime.storeBatchMs}ms, power lost during a snapshot transfer or install ${ratio(o.runtime.snapshotCrash)}, captures up to ${o.runtime.captureExtraMaxMs}ms slower${o.runtime.captureRace ? " and raced by installs" : ""}, power lost just after an acknowledgement ${ratio(o.runtime.ackCrash)}, appends up to ${o.runtime.appendBytesMax} bytes`,
        ]
      : []),
    ...(o.streams === undefined
      ? []
      : [
          `streams: ${o.streams.streams} stream(s), ${o.streams.producers} producers (${o.streams.messagesMax} messages), ${o.streams.readers} readers, ${o.streams.consumers} consumers (fetch ${o.streams.fetchMax}, ack wait ${o.streams.ackWaitMs}ms, ${o.streams.maxDeliveries} deliveries, mix ack/nack/term/ignore ${o.streams.settleMix.ack}/${o.streams.settleMix.nack}/${o.streams.settleMix.term}/${o.streams.settleMix.ignore}), timeout ${o.streams.timeoutMs}ms, ${o.streams.retriesMax} retries${o.streams.retention === undefined ? "" : `, s1 keeps ${"maxMessages" in o.streams.retention ? `at most ${o.streams.retention.maxMessages} messages` : `messages for ${o.streams.retention.maxAgeMs}ms`}`}`,
        ]),
    `workload: ${w.clients} clients, ${w.keys} keys, ${w.operationsMax} ops, mix get/put/put-if/delete/incr ${w.mix.get}/${w.mix.put}/${w.mix.putIf}/${w.mix.delete}/${w.mix.incr}, timeout ${w.opTimeoutMs}ms, ${w.retriesMax} ${w.idempotentRetries ? "idempotent " : ""}retries`,
    `replay: ${replayLine(o)}`,
  ].join("\n");
}
