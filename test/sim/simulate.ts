// Runs one seed of the simulator at a level, picking the cluster that level runs against. Shared by
// the command line (main.ts), the seed tests and the mutant script.
import { coreCluster, simTiming } from "./core-cluster.js";
import { type KnownIssue, knownIssueOf } from "./known-issues.js";
import { serviceKvDialect } from "./kv-service-model.js";
import { kvVersionDialect } from "./kv-workload.js";
import { runtimeCluster } from "./runtime-cluster.js";
import { replayLine, type SimLevel, simOptionsFromSeed } from "./sim-options.js";
import { runSimulation, runSimulationAsync, type SimReport } from "./sim-runner.js";

/**
 * How a run ended: its report, or the invariant a component asserted (which fails the run too).
 * `known` names the known product issue that explains a failing run (see known-issues.ts).
 */
export type SeedOutcome =
  | {
      readonly ok: boolean;
      readonly text: string;
      readonly report: SimReport;
      readonly known: KnownIssue | undefined;
    }
  | { readonly ok: false; readonly text: string; readonly report?: undefined; readonly known?: undefined };

/**
 * Runs seed `seed` at `level` and never throws for a failing run: an assertion inside the core or
 * the harness (an entry applied twice, a hole in the log) becomes a FAIL with the replay line.
 */
export async function runSeed(
  seed: number,
  level: SimLevel,
  trace?: (line: string) => void,
): Promise<SeedOutcome> {
  try {
    const report = await simulateSeed(seed, level, trace);
    const known = knownIssueOf(report);
    const text =
      known === undefined
        ? report.text
        : `${report.text}\nknown product issue ${known.id}: ${known.diagnosis}`;
    return { ok: report.ok, text, report, known };
  } catch (error) {
    const why = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return {
      ok: false,
      text: `FAIL ${replayLine({ seed, level })}
the run stopped on an assertion: ${why}`,
    };
  }
}

/**
 * Runs seed `seed` at `level`: levels 0 and 1 drive the Raft cores directly (core-cluster.ts), level
 * 2 the real runtime and storage (runtime-cluster.ts).
 */
export async function simulateSeed(
  seed: number,
  level: SimLevel,
  trace?: (line: string) => void,
): Promise<SimReport> {
  const options = simOptionsFromSeed(seed, level);
  const hooks = trace === undefined ? {} : { trace };
  if (level === 2)
    return runSimulationAsync(options, runtimeCluster(hooks), serviceKvDialect, simTiming.settleMs);
  return runSimulation(options, coreCluster(hooks), kvVersionDialect);
}
