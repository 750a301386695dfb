// Product bugs the simulator found that are not fixed yet. A failing run whose only failures are
// convergence problems and whose report shows one of these signatures is "known": the command line
// prints it apart, `npm test`'s fresh batches report it without failing, and the mutant script does
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
 * one temp name and pruning the same files), and a follower that may not campaign restarting its
 * election clock, so it kept a dead leader's lease and refused the votes the cluster needed.
 */
export const knownIssues: readonly KnownIssue[] = [
  {
    id: "uncommitted-self-removal-deadlock",
    diagnosis:
      "src/raft/raw-node.ts takes a membership change into effect when it is appended, and #promotable " +
      "asks only the latest configuration. A leader cut off right after proposing its own removal (the " +
      "entry reached no one) steps down and, its own log saying it is no longer a voter, never campaigns " +
      "again; under the committed configuration it is still a voter whose vote every majority needs, and " +
      "its longer log refuses the others. Seed 1017838: voters {1,3}, leader 3 proposes 'remove 3', is " +
      "isolated; node 1 can never win, node 3 never tries, and healing changes nothing. Letting a node " +
      "whose removal is not committed campaign (promotable if a voter in the configuration as of its " +
      "commit index) makes the seed pass; applying changes on commit, as etcd does, is the other way.",
    shows: (text) => uncommittedSelfRemoval(text),
    seeds: [{ seed: 1017838, level: 1 }],
  },
];

/**
 * Whether a "no leader" report shows a node that is not a voter in its own configuration and knows
 * no leader, while another node still counts it as a voter.
 */
function uncommittedSelfRemoval(text: string): boolean {
  const nodes = noLeaderNodes(text);
  return nodes.some(
    (n) =>
      n.leader === "-" &&
      !n.voters.includes(n.id) &&
      nodes.some((o) => o.id !== n.id && o.voters.includes(n.id)),
  );
}

/** The nodes of a "no leader" report line: id, role, voters in its configuration, known leader. */
function noLeaderNodes(text: string): { id: string; role: string; voters: string[]; leader: string }[] {
  const line = /no leader at the end of the liveness phase \((.*)\)/.exec(text)?.[1];
  if (line === undefined) return [];
  return line.split("; ").flatMap((node) => {
    const m = /^(\d+): (\S+) t\d+ last \d+ commit \d+ voters ([\d,]*) leader (\S+)$/.exec(node);
    if (m === null) return [];
    return [{ id: m[1] ?? "", role: m[2] ?? "", voters: (m[3] ?? "").split(","), leader: m[4] ?? "" }];
  });
}

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
