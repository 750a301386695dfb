// The planted bugs of `npm run sim:mutants` (mutants.ts): each a textual patch of the sources that
// must apply exactly once. mutants.test.ts checks in `npm test` that every anchor still matches, so
// a refactor cannot quietly retire a mutant.

/** One textual change: in `file`, `anchor` (which must occur exactly once) becomes `replacement`. */
export interface Patch {
  readonly file: string;
  readonly anchor: string;
  readonly replacement: string;
}

/** One planted bug: its patches, the level that runs it, and how many seeds may pass before it must be caught. */
export interface Mutant {
  readonly name: string;
  readonly patches: readonly Patch[];
  readonly level: 1 | 2;
  readonly seedsMax: number;
}

/** A patch, briefly: in `file`, `anchor` becomes `replacement`. */
export const p = (file: string, anchor: string, replacement: string): Patch => ({
  file,
  anchor,
  replacement,
});

export const mutants: readonly Mutant[] = [
  {
    name: "commit an entry of an earlier term by counting replicas (Raft §5.4.2, Figure 8)",
    patches: [
      p(
        "src/raft/raw-node.ts",
        "if (this.#log.termAt(index) !== this.#term) return;",
        "if (this.#log.termAt(index) === undefined) return;",
      ),
    ],
    level: 1,
    seedsMax: 3000,
  },
  {
    name: "grant a vote without the up-to-date log check (Raft §5.4.1)",
    patches: [
      p(
        "src/raft/raw-node.ts",
        "if (canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {",
        "if (canVote) {",
      ),
    ],
    level: 1,
    seedsMax: 1000,
  },
  // Caught at level-1 seed 224 at d636d8c; at 229060a the first seed that catches it is 1615
  // (2026-12-06). The Raft core's only change between them is 909f87c (the append refresh counts
  // heartbeat intervals, not responses), which moves level 1's timings; so it gets 3000 seeds.
  {
    name: "acknowledge (votes, append responses) before the fsync",
    patches: [
      p(
        "src/raft/raw-node.ts",
        "if (afterPersist) this.#msgsAfterPersist.push(m);",
        "if (afterPersist && m.type === ('never' as string)) this.#msgsAfterPersist.push(m);",
      ),
    ],
    level: 1,
    seedsMax: 3000,
  },
  {
    name: "hand out the last applied entry again (apply an entry twice)",
    patches: [
      p(
        "src/raft/raft-log.ts",
        "return this.slice(this.applyingIndex + 1, hi + 1, bytesMax);",
        "return this.slice(Math.max(1, this.applyingIndex), hi + 1, bytesMax);",
      ),
    ],
    level: 1,
    seedsMax: 200,
  },
  {
    name: "serve a get from the leader's local state without ReadIndex",
    patches: [
      p(
        "test/sim/core-cluster.ts",
        `          const result = raw.readIndex(context);
          if (!result.ok) fail(result.reason, null);
          else m.reads.set(context, { key: input.key, done });`,
        `          m.reads.set(context, { key: input.key, done, index: 0 });
          this.#serveReads(m);`,
      ),
    ],
    level: 1,
    seedsMax: 3000,
  },
  {
    // Raft §7 receiver rule 6 keeps the log after a snapshot only when it holds the snapshot's last
    // entry with the same term; this follower keeps a log that merely reaches that index, so a
    // conflicting entry from a deposed leader survives, is taken as committed, and is applied.
    name: "install a snapshot without discarding a conflicting log (Raft §7)",
    patches: [
      p(
        "src/raft/raw-node.ts",
        "if (log.matchTerm(snap.index, snap.term)) {",
        "if (log.termAt(snap.index) !== undefined) {",
      ),
    ],
    level: 1,
    seedsMax: 3000,
  },
  {
    name: "runtime: send acknowledgements before the Ready's writes are durable",
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
    level: 2,
    seedsMax: 300,
  },
  {
    name: "runtime: a read barrier that resolves at once (no ReadIndex)",
    patches: [
      p(
        "src/node/raft-group.ts",
        "  readBarrier(): Promise<void> {\n",
        '  readBarrier(): Promise<void> {\n    if (this.#soft.role === "leader") return Promise.resolve();\n',
      ),
    ],
    level: 2,
    seedsMax: 300,
  },
  {
    // Issue 12, bug 1: the restore resolved when visible (lmdb's overlapping sync) and the runtime
    // compacted the log to it; the load trusted the state store unless a newer snapshot was there.
    // Either fix alone closes the hole, so the mutant takes both out. The simulator runs lmdb's
    // twin, so the restore's missing flush is planted there.
    name: "runtime: compact the log to a restore that is visible but not durable, and trust the state store at load",
    patches: [
      p(
        "src/storage/memory-state-store.ts",
        "    await this.#flushedThrough(this.#committedSeq);\n    return this.appliedIndex(group);",
        "    return this.appliedIndex(group);",
      ),
      p(
        "src/node/wal-group-storage.ts",
        "const stateLost = snapshots.isRestoring() || snapshots.appliedIndex() < compactIndex;",
        "const stateLost = snapshots.isRestoring() && latest !== undefined && latest.index > compactIndex;",
      ),
    ],
    level: 2,
    seedsMax: 300,
  },
  {
    // Issue 18: the log is compacted to the state store without a snapshot file, so the state store
    // must hold the compaction point durably. This takes the applied index as it is visible, before
    // lmdb's flush (the simulator's twin of lmdb plays the flush), so a power loss leaves the state
    // behind a log whose entries are gone. Caught at seed 89 (not linearizable) when it was added
    // (e95d572). Since a leader keeps the log a follower lacks (703bf81) it SURVIVES the simulator
    // (seeds 1..822 pass; 823 failed only on the checker's step budget, since raised): a power
    // loss rarely lands between the compaction and lmdb's flush. The unit test
    // "StateStore.durableAppliedIndex" (test/unit/node/snapshot-due.test.ts) catches it; aiming a
    // power loss at that window is the simulator's next step.
    name: "runtime: compact the log to the state store's applied index before it is durable",
    patches: [
      p(
        "src/storage/memory-state-store.ts",
        "    const applied = this.appliedIndex(group);\n    await this.#flushedThrough(this.#committedSeq);\n",
        "    const applied = this.appliedIndex(group);\n",
      ),
    ],
    level: 2,
    seedsMax: 300,
  },
  {
    // Issue 12, bug 3: a capture's compaction landing after an install's larger one.
    name: "runtime: a snapshot capture compacts the log after an install compacted it further",
    patches: [
      p("src/node/wal-group-storage.ts", "    if (snapshot.index <= this.#compactedThrough) return;\n", ""),
    ],
    level: 2,
    seedsMax: 300,
  },
  {
    // The leader's TTL sweep (CairnNode's housekeeping, KvService.sweepExpiredIfDue) removes the
    // keys due within the next second as well as those due now: keys vanish before their deadline.
    name: "housekeeping: the TTL sweep deletes keys up to a second before their deadline",
    patches: [
      p(
        "src/service/kv/kv-state-machine.ts",
        "const end = new ByteWriter(8).u64(clockMs + 1).finish();",
        "const end = new ByteWriter(8).u64(clockMs + 1_000).finish();",
      ),
    ],
    level: 2,
    seedsMax: 300,
  },
];

/** Why a mutant's patches would not apply to `read(file)`'s text: one line per anchor not found exactly once. */
export function anchorProblems(
  mutant: Pick<Mutant, "name" | "patches">,
  read: (file: string) => string,
): string[] {
  return mutant.patches.flatMap((patch) => {
    const count = read(patch.file).split(patch.anchor).length - 1;
    return count === 1
      ? []
      : [`mutant "${mutant.name}": anchor found ${count} times in ${patch.file}, expected once`];
  });
}
