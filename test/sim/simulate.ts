// Runs one seed of the simulator at a level, picking the cluster that level runs against. Shared by
// the command line (main.ts), the seed tests and the mutant script.
import type { Message } from "../../src/raft/index.js";
import { coreCluster } from "./core-cluster.js";
import { replayLine, type SimLevel, simOptionsFromSeed } from "./sim-options.js";
import { runSimulation, type SimReport } from "./sim-runner.js";

/** Thrown for a level whose cluster is not assembled yet. */
export class SimLevelUnavailableError extends Error {
  override readonly name = "SimLevelUnavailableError";
  readonly code = "ERR_SIM_LEVEL_UNAVAILABLE";
}

/** How a run ended: its report, or the invariant a component asserted (which fails the run too). */
export type SeedOutcome =
  | { readonly ok: boolean; readonly text: string; readonly report: SimReport }
  | { readonly ok: false; readonly text: string; readonly report?: undefined };

/**
 * Runs seed `seed` at `level` and never throws for a failing run: an assertion inside the core or
 * the harness (an entry applied twice, a hole in the log) becomes a FAIL with the replay line.
 */
export function runSeed(seed: number, level: SimLevel, trace?: (line: string) => void): SeedOutcome {
  try {
    const report = simulateSeed(seed, level, trace);
    return { ok: report.ok, text: report.text, report };
  } catch (error) {
    if (error instanceof SimLevelUnavailableError) throw error;
    const why = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return {
      ok: false,
      text: `FAIL ${replayLine({ seed, level })}
the run stopped on an assertion: ${why}`,
    };
  }
}

/**
 * Runs seed `seed` at `level`: levels 0 and 1 drive the Raft cores directly (core-cluster.ts).
 * Level 2 is meant for the real runtime and storage, which this harness does not assemble yet.
 */
export function simulateSeed(seed: number, level: SimLevel, trace?: (line: string) => void): SimReport {
  if (level === 2) {
    throw new SimLevelUnavailableError("level 2 (src/node runtime over src/storage) is not assembled yet");
  }
  const options = simOptionsFromSeed(seed, level);
  return runSimulation<Message>(options, coreCluster(trace === undefined ? {} : { trace }));
}
