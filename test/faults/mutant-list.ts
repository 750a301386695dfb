// The planted bugs of `npm run faults:mutants` (mutants.ts): each a textual patch of the sources (the
// simulator's Patch shape, applied the same way) and the fault run that must catch it, tried over a
// few seeds. mutants.test.ts checks in `npm test` that every anchor still matches exactly once.
import { type Patch, p } from "../sim/mutant-list.js";

/** One planted bug and the fault runs that must catch it. */
export interface FaultMutant {
  readonly name: string;
  readonly patches: readonly Patch[];
  /** `npm run faults` arguments for the runs (the seed is added). */
  readonly args: readonly string[];
  /** Seeds tried in order until one fails; the mutant survives if none does. */
  readonly seeds: readonly number[];
}

export const faultMutants: readonly FaultMutant[] = [
  {
    // A follower that answers a linearizable read from its own state, without asking the leader
    // (ReadIndex), serves values a write acknowledged elsewhere has already replaced; cut off by a
    // partition it serves them for seconds.
    name: "a follower serves linearizable reads from its local state (no ReadIndex)",
    patches: [
      p(
        "src/node/raft-group.ts",
        "  readBarrier(): Promise<void> {\n",
        '  readBarrier(): Promise<void> {\n    if (this.#soft.role === "follower") return Promise.resolve();\n',
      ),
    ],
    args: ["--seconds", "30", "--faults", "partition,pause", "--no-streams"],
    seeds: [1, 2, 3],
  },
  {
    // Followers acknowledge appends (and grant votes) before their log write is durable. The power
    // cut (crash-all) first lets the followers' disks hold writes in memory, then kills every node:
    // entries the leader and a follower acknowledged survive on the leader alone, and when the two
    // followers elect one of themselves after the restart, those entries are overwritten.
    name: "acknowledge appends and votes before the log write is durable",
    patches: [
      p(
        "src/node/raft-group.ts",
        "    this.#dispatch(\n      rd.messages,\n",
        "    this.#dispatch(rd.messagesAfterPersist, true);\n    this.#dispatch(\n      rd.messages,\n",
      ),
      p(
        "src/node/raft-group.ts",
        "snapshot messages included.\n    this.#dispatch(rd.messagesAfterPersist, true);\n",
        "snapshot messages included.\n",
      ),
    ],
    args: ["--seconds", "60", "--faults", "crash-all"],
    seeds: [1, 2, 3],
  },
  {
    // The idempotency table is never consulted, so a retry of a write whose answer was lost
    // applies it a second time.
    name: "a retried write applies twice (the idempotency table is ignored)",
    patches: [
      p(
        "src/service/command.ts",
        '  const stored = state.get("dedupe", key);\n',
        "  const stored: Uint8Array | undefined = undefined;\n",
      ),
    ],
    args: ["--seconds", "40", "--faults", "kill,pause,partition", "--no-streams"],
    seeds: [1, 2, 3],
  },
  {
    // A corrupt record accepted: the state store no longer checks its values' checksums (on reads,
    // and in the child process that verifies the store before a node opens it). A node whose lmdb
    // file had a bit flipped in a stored stream message comes back with the damaged message and
    // serves it. The seeds are ones whose 40 s schedule flips stored values three times; no
    // snapshots, since a snapshot from the leader would replace the damaged state before the check.
    name: "a corrupt record accepted (state store checksums not checked)",
    patches: [
      p(
        "src/storage/lmdb-state-store.ts",
        "  if (crc32(value, crc32(key)) !== expected) throw corrupt();\n",
        "  void expected;\n",
      ),
    ],
    args: ["--seconds", "40", "--faults", "corrupt", "--snapshot-entries", "100000000"],
    seeds: [7, 28, 72],
  },
];
