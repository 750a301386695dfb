// One fuzz run: start the live nodes, take their state hash, then send batches of inputs to each
// target in turn (round robin) until the time or the input count is spent, judging the nodes with
// the oracle after every batch; stop at the first batch the oracle fails, and finally compare the
// state hashes. Batch b of target T has its own seed, derived from the run's seed, T and b, so one
// failing batch replays alone (`--target T --batch b`).
import { grpcTarget } from "./grpc-target.js";
import { httpTarget } from "./http-target.js";
import { LiveNodes, type StoredState, stateDifference } from "./live-node.js";
import { peerTarget, snapshotTarget } from "./peer-target.js";
import { respTarget } from "./resp-target.js";
import { addOutcomes, emptyTally, type FuzzTarget, type TargetTally } from "./target.js";
import { textTarget } from "./text-target.js";

/** Every target, in the order a run visits them. */
export const fuzzTargets: readonly FuzzTarget[] = [
  httpTarget,
  respTarget,
  textTarget,
  grpcTarget,
  peerTarget,
  snapshotTarget,
];

/** What a run is asked to do. */
export interface FuzzRunOptions {
  readonly seed: number;
  /** Stop starting batches after this many seconds of fuzzing (default: no time bound). */
  readonly seconds?: number;
  /** Stop after this many inputs per target (default: no count bound). */
  readonly inputsPerTarget?: number;
  /** Only these targets (default: all). */
  readonly targets?: readonly string[];
  /** Run only this batch index of each target (a replay). */
  readonly batch?: number;
  /** Inputs per batch (default 50). */
  readonly batchSize?: number;
  readonly say: (line: string) => void;
}

/** What a run found. */
export interface FuzzRunReport {
  readonly seed: number;
  readonly tallies: ReadonlyMap<string, TargetTally>;
  /** Oracle failures: crashes, hangs, changed data, with the batch that preceded them. */
  readonly problems: readonly string[];
  /** The batches after which the oracle failed or that held a finding: target and index. */
  readonly failedBatches: readonly { readonly target: string; readonly batch: number }[];
  readonly hashesBefore: ReadonlyMap<string, string>;
  readonly hashesAfter: ReadonlyMap<string, string>;
  readonly seconds: number;
}

/** The seed of batch `batch` of `target` in a run of `seed` (FNV-1a over the three, 31 bits). */
export function batchSeed(seed: number, target: string, batch: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}/${target}/${batch}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** Runs the fuzzer against fresh live nodes and reports per target what happened. */
export async function runFuzz(options: FuzzRunOptions): Promise<FuzzRunReport> {
  const started = performance.now();
  const batchSize = options.batchSize ?? 50;
  const chosen = fuzzTargets.filter((t) => options.targets === undefined || options.targets.includes(t.name));
  if (chosen.length === 0)
    throw new Error(`no such target; targets: ${fuzzTargets.map((t) => t.name).join(", ")}`);
  const tallies = new Map(chosen.map((t) => [t.name, emptyTally()]));
  const problems: string[] = [];
  const failedBatches: { target: string; batch: number }[] = [];
  const nodes = await LiveNodes.start(options.say);
  let statesBefore = new Map<string, StoredState>();
  const hashesAfter = new Map<string, string>();
  try {
    statesBefore = await nodes.stopAndHash();
    await nodes.restart();
    // The oracle once before any input: the nodes serve, and each has checked the fuzz token once
    // (scrypt), so the first batch does not wait on a dozen token checks at once.
    const baseline = await nodes.check();
    if (baseline.length > 0)
      throw new Error(`the nodes fail the oracle before fuzzing:\n${baseline.join("\n")}`);
    const deadline =
      options.seconds === undefined ? Number.POSITIVE_INFINITY : started + options.seconds * 1000;
    const countLeft = (name: string): number =>
      (options.inputsPerTarget ?? Number.POSITIVE_INFINITY) - (tallies.get(name)?.tried ?? 0);
    let round = options.batch ?? 0;
    options.say(`fuzzing ${chosen.map((t) => t.name).join(", ")} (seed ${options.seed})`);
    for (;;) {
      const due = chosen.filter((t) => countLeft(t.name) > 0);
      if (due.length === 0 || performance.now() >= deadline) break;
      for (const t of due) {
        if (performance.now() >= deadline) break;
        const tally = tallies.get(t.name) ?? emptyTally();
        const count = Math.min(batchSize, countLeft(t.name));
        const findingsBefore = tally.findings.length;
        addOutcomes(tally, await t.batch(nodes.endpoints, batchSeed(options.seed, t.name, round), count));
        const oracle = await nodes.check();
        if (oracle.length > 0 || tally.findings.length > findingsBefore)
          failedBatches.push({ target: t.name, batch: round });
        if (oracle.length > 0) {
          problems.push(...oracle.map((p) => `after ${t.name} batch ${round}: ${p}`));
          break;
        }
      }
      if (problems.length > 0 || options.batch !== undefined) break;
      round++;
    }
    for (const t of chosen) t.close?.();
    if (problems.length === 0) {
      const statesAfter = await nodes.stopAndHash();
      for (const [name, before] of statesBefore) {
        const after = statesAfter.get(name);
        if (after === undefined) continue;
        hashesAfter.set(name, after.hash);
        if (after.hash !== before.hash)
          problems.push(
            `the state hash of ${name} changed: ${before.hash} before, ${after.hash} after; entries:\n${stateDifference(before, after).join("\n")}`,
          );
      }
    }
  } finally {
    await nodes.close();
  }
  return {
    seed: options.seed,
    tallies,
    problems,
    failedBatches,
    hashesBefore: new Map([...statesBefore].map(([name, state]) => [name, state.hash])),
    hashesAfter,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The report as lines: per target inputs, served, refusals by code (most frequent first), findings. */
export function describeReport(report: FuzzRunReport): string[] {
  const lines: string[] = [];
  let total = 0;
  for (const [name, tally] of report.tallies) {
    total += tally.tried;
    const refused = [...tally.refused.values()].reduce((a, b) => a + b, 0);
    lines.push(
      `${name}: ${tally.tried} inputs, ${tally.served} served, ${refused} refused, ${tally.findings.length} findings`,
    );
    const codes = [...tally.refused.entries()].sort((a, b) => b[1] - a[1]);
    for (const [code, n] of codes.slice(0, 12)) lines.push(`  ${String(n).padStart(6)}  ${code}`);
    if (codes.length > 12) lines.push(`  ... and ${codes.length - 12} more codes`);
    for (const f of tally.findings.slice(0, 5)) lines.push(`  FINDING ${f.slice(0, 1_000)}`);
  }
  lines.push(`${total} inputs in ${report.seconds.toFixed(0)} s`);
  for (const [name, hash] of report.hashesAfter)
    lines.push(`state hash of ${name}: ${hash} (before: ${report.hashesBefore.get(name)})`);
  for (const p of report.problems) lines.push(`PROBLEM ${p.slice(0, 4_000)}`);
  for (const b of report.failedBatches.slice(0, 5))
    lines.push(`replay: npm run fuzz -- --seed ${report.seed} --target ${b.target} --batch ${b.batch}`);
  return lines;
}
