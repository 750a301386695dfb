// Majority arithmetic over the voters of one configuration (Raft §5.2, §5.3). Learners never count.
import type { LogIndex, NodeId } from "./types.js";

/** The outcome of counting votes. */
export type VoteResult = "won" | "lost" | "pending";

/** How many voters form a majority of `voterCount` (1 of 1, 2 of 3, 3 of 4, 3 of 5). */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index that a majority of voters hold (Raft §5.3): the median-from-the-top of their
 * match indexes. With no voters it is 0, so nothing commits in an empty configuration.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => LogIndex): number {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[majority(voters.length) - 1] ?? 0;
}

/**
 * Counts granted and rejected votes among `voters` (Raft §5.2): won once a majority granted, lost
 * once a majority can no longer be reached, pending otherwise. Votes from non-voters are ignored.
 */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return "lost";
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const need = majority(voters.length);
  if (granted >= need) return "won";
  if (voters.length - rejected < need) return "lost";
  return "pending";
}

/** Whether the members in `active` include a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  return voters.filter(active).length >= majority(voters.length);
}
