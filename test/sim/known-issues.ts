// Product bugs the simulator found that are not fixed yet. A failing run whose only failures are
// convergence problems and whose report shows one of these signatures is "known": the command line
// prints it apart, `npm test`'s fixed seed ranges report it without failing, and the mutant script does
// not count it as catching a mutant. Any other failure still fails. Once a bug is fixed, delete its
// entry: its seeds then join regression-seeds.ts and must pass.
import type { SimLevel } from "./sim-options.js";
import type { SimReport } from "./sim-runner.js";

/** One diagnosed, unfixed product bug. */
export interface KnownIssue {
  /** A short name, printed with every run it explains. */
  readonly id: string;
  /** What goes wrong and why, for whoever fixes it. */
  readonly diagnosis: string;
  /** Whether a failing report's text shows the bug. */
  readonly shows: (reportText: string) => boolean;
  /** Seeds that show it; replay each with `npm run sim -- --seed N --level L`. */
  readonly seeds: readonly { readonly seed: number; readonly level: SimLevel }[];
}

/**
 * The list. Fixed so far (their seeds are in regression-seeds.ts): concurrent writers of the
 * snapshot store (a capture beside a received snapshot, or one snapshot streamed twice, both using
 * one temp name and pruning the same files); a follower that may not campaign restarting its
 * election clock, so it kept a dead leader's lease and refused the votes the cluster needed; and a
 * leader cut off right after appending its own removal never campaigning again, although the
 * committed configuration still needed its vote; and a wiped member that stayed recovering on an
 * idle cluster because the append carrying the final commit was lost (seed 574).
 */
export const knownIssues: readonly KnownIssue[] = [];

/**
 * The known issue that explains a failing run: every failure is a convergence problem (no safety
 * checker, linearizability or idempotency failure) and the report matches the issue's signature.
 */
export function knownIssueOf(
  report: SimReport | undefined,
  issues: readonly KnownIssue[] = knownIssues,
): KnownIssue | undefined {
  if (report === undefined || report.ok) return undefined;
  const onlyLiveness =
    report.linearizability.kind === "linearizable" &&
    report.raftViolations.length === 0 &&
    report.workloadCounters.idempotencyViolations === 0 &&
    report.streamProblems.length === 0 &&
    report.convergenceProblems.length > 0;
  if (!onlyLiveness) return undefined;
  return issues.find((issue) => issue.shows(report.text));
}
