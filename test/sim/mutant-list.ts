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

const p = (file: string, anchor: string, replacement: string): Patch => ({ file, anchor, replacement });

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
    seedsMax: 1000,
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
];

/** Why a mutant's patches would not apply to `read(file)`'s text: one line per anchor not found exactly once. */
export function anchorProblems(mutant: Mutant, read: (file: string) => string): string[] {
  return mutant.patches.flatMap((patch) => {
    const count = read(patch.file).split(patch.anchor).length - 1;
    return count === 1
      ? []
      : [`mutant "${mutant.name}": anchor found ${count} times in ${patch.file}, expected once`];
  });
}
