// Seeds that once failed (and the fix that made them pass), replayed by `npm test` at their level.
// Every failing seed the simulator finds joins this list once its bug is fixed.
import type { SimLevel } from "./sim-options.js";

/** One remembered seed: where it failed and why. */
export interface RegressionSeed {
  readonly seed: number;
  readonly level: SimLevel;
  readonly why: string;
}

/** The regression list. */
export const regressionSeeds: readonly RegressionSeed[] = [
  {
    seed: 82,
    level: 1,
    why: "harness: a lagging follower failed convergence at the end of a fixed liveness phase; the cluster now gets a settle period",
  },
];
