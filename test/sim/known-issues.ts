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

/** The list. */
export const knownIssues: readonly KnownIssue[] = [
  {
    id: "snapshot-store-concurrent-writers",
    diagnosis:
      "src/storage/snapshot-store.ts is not safe for two writers at once, and src/node/raft-group.ts starts " +
      "them: a follower captures its own snapshot (#maybeSnapshot) while storing one the leader streams " +
      "(receiveSnapshot), and stores two streams of the same snapshot at once. Both writers use the same " +
      "`.tmp` name (the second rename fails with ENOENT) and both prune the same old files (the second " +
      "unlink fails with ENOENT); FailStop takes ENOENT for an I/O failure, so the snapshot store stops for " +
      "good: the node stops on its next capture, or can never install a snapshot again and never catches " +
      "up. The second stream comes from src/raft/raw-node.ts reportSnapshot(peer, ok), which names no " +
      "snapshot: the report of an earlier transfer that already completed ends the snapshot state of a " +
      "newer one, the leader probes, and streams the same snapshot again while the first is being stored.",
    shows: (text) => /ENOENT: (?:unlink|rename) '\/snapshots\//.test(text),
    seeds: [
      { seed: 1014, level: 2 },
      { seed: 2014, level: 2 },
      { seed: 2045, level: 2 },
      { seed: 3039, level: 2 },
      { seed: 3045, level: 2 },
      { seed: 3047, level: 2 },
      { seed: 1000757, level: 2 },
    ],
  },
  {
    id: "non-promotable-follower-keeps-lease",
    diagnosis:
      "src/raft/raw-node.ts #tickElection resets electionElapsed at every election timeout even when the " +
      "node cannot campaign (#promotable is false: it does not know it is a voter, for example a member " +
      "re-added while it was cut off). Such a follower never clears the leaderId of a leader that is gone, " +
      "so its leader lease (electionElapsed < electionTimeoutTicks) holds almost always, and it refuses " +
      "pre-votes and ignores votes the cluster needs; if its randomized timeout equals electionTimeoutTicks, " +
      "forever. Seen with a leader cut off after proposing its own removal: it takes itself out of its " +
      "configuration and will not campaign, its longer log refuses the other voter, and the stale follower " +
      "blocks the last possible majority. etcd lets electionElapsed grow on a node that is not promotable; " +
      "with that change seed 502340 passes.",
    shows: (text) => staleNonVoterBlocks(text),
    seeds: [{ seed: 502340, level: 1 }],
  },
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
 * Whether a "no leader" report shows a follower that is not in its own configuration yet still
 * names a leader (the stale lease of non-promotable-follower-keeps-lease).
 */
function staleNonVoterBlocks(text: string): boolean {
  return noLeaderNodes(text).some(
    (n) => n.role === "follower" && n.leader !== "-" && !n.voters.includes(n.id),
  );
}

/**
 * The known issue that explains a failing run: every failure is a convergence problem (no safety
 * checker, linearizability or idempotency failure) and the report matches the issue's signature.
 */
export function knownIssueOf(report: SimReport | undefined): KnownIssue | undefined {
  if (report === undefined || report.ok) return undefined;
  const onlyLiveness =
    report.linearizability.kind === "linearizable" &&
    report.raftViolations.length === 0 &&
    report.workloadCounters.idempotencyViolations === 0 &&
    report.streamProblems.length === 0 &&
    report.convergenceProblems.length > 0;
  if (!onlyLiveness) return undefined;
  return knownIssues.find((issue) => issue.shows(report.text));
}
