// Whether removing a member keeps the cluster able to commit: the rule the supervisor applies before
// it asks the cluster to remove a node, as a pure function of the configuration and of which
// voters answer. Raft §4.1 (dissertation): a configuration commits with a majority of its voters,
// so the removal itself needs a live majority of the current voters, and the cluster after it needs
// a live majority of the remaining ones, or it stops accepting writes.

/** The facts the rule looks at. */
export interface RemovalFacts {
  /** Voter ids of the current configuration. */
  readonly voters: readonly number[];
  /** Learner ids of the current configuration. */
  readonly learners: readonly number[];
  /** Voters whose node answers now (running and not paused). */
  readonly liveVoters: readonly number[];
}

/** The answer: go ahead, or why not (a message that says what to do instead). */
export type RemovalVerdict =
  | { readonly ok: true; readonly member: boolean }
  | { readonly ok: false; readonly reason: "no-majority-now" | "breaks-majority"; readonly message: string };

/** The smallest majority of `n` voters. */
export function majorityOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** Decides whether member `id` may be removed; `member: false` when it is not in the configuration. */
export function removalVerdict(facts: RemovalFacts, id: number, label = `member ${id}`): RemovalVerdict {
  const live = new Set(facts.liveVoters.filter((v) => facts.voters.includes(v)));
  const isVoter = facts.voters.includes(id);
  if (!isVoter && !facts.learners.includes(id)) return { ok: true, member: false };
  if (live.size < majorityOf(facts.voters.length)) {
    return {
      ok: false,
      reason: "no-majority-now",
      message:
        `only ${live.size} of ${facts.voters.length} voters answer, so the cluster cannot commit a ` +
        `removal now: start or resume voters until ${majorityOf(facts.voters.length)} answer`,
    };
  }
  if (!isVoter) return { ok: true, member: true };
  const votersAfter = facts.voters.length - 1;
  const liveAfter = live.size - (live.has(id) ? 1 : 0);
  if (votersAfter === 0) {
    return {
      ok: false,
      reason: "breaks-majority",
      message: `${label} is the last voter; it cannot be removed`,
    };
  }
  if (liveAfter < majorityOf(votersAfter)) {
    return {
      ok: false,
      reason: "breaks-majority",
      message:
        `removing ${label} would leave ${liveAfter} of ${votersAfter} voters answering, fewer than ` +
        `the majority of ${majorityOf(votersAfter)} the cluster needs to accept writes: start the ` +
        "stopped voters first, or remove a stopped voter instead",
    };
  }
  return { ok: true, member: true };
}
