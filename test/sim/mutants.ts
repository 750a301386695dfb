// `npm run sim:mutants`: shows that the simulator's checkers catch real bugs. Each mutant copies
// src/ and test/ to a scratch directory, plants one known bug with a textual patch (the script fails
// loudly if the anchor text is not found exactly once), runs the simulator there over a bounded
// number of seeds until the first failing one, and expects a failure. The working tree is never
// modified. Exits 1 if any mutant survives or any patch does not apply.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One textual change: in `file`, `anchor` (which must occur exactly once) becomes `replacement`. */
interface Patch {
  readonly file: string;
  readonly anchor: string;
  readonly replacement: string;
}

/** One planted bug: its patches, the level that runs it, and how many seeds may pass before it must be caught. */
interface Mutant {
  readonly name: string;
  readonly patches: readonly Patch[];
  readonly level: 1 | 2;
  readonly seedsMax: number;
}

const p = (file: string, anchor: string, replacement: string): Patch => ({ file, anchor, replacement });

const mutants: readonly Mutant[] = [
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
        "    if (rd.messages.length > 0) {",
        "    this.#options.sender.send(rd.messagesAfterPersist);\n    if (rd.messages.length > 0) {",
      ),
      p(
        "src/node/raft-group.ts",
        "if (rd.messagesAfterPersist.length > 0) this.#options.sender.send(rd.messagesAfterPersist);",
        "",
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

const root = new URL("../..", import.meta.url).pathname;
const firstSeed = 1;

/** Copies the sources to a scratch directory and applies the mutant's patch there. */
function plant(mutant: Mutant): string {
  const dir = mkdtempSync(join(tmpdir(), "cairn-mutant-"));
  for (const part of ["src", "test", "package.json", "tsconfig.json"]) {
    cpSync(join(root, part), join(dir, part), { recursive: true });
  }
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  for (const patch of mutant.patches) {
    const path = join(dir, patch.file);
    const text = readFileSync(path, "utf8");
    const count = text.split(patch.anchor).length - 1;
    if (count !== 1) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mutant "${mutant.name}": anchor found ${count} times in ${patch.file}, expected once`);
    }
    writeFileSync(
      path,
      text.replace(patch.anchor, () => patch.replacement),
    );
  }
  return dir;
}

function main(): number {
  const only = process.argv[2];
  let survived = 0;
  for (const mutant of mutants) {
    if (only !== undefined && !mutant.name.includes(only)) continue;
    const dir = plant(mutant);
    const started = performance.now();
    try {
      const run = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          join(dir, "test/sim/main.ts"),
          "--level",
          String(mutant.level),
          "--seed",
          String(firstSeed),
          "--count",
          String(mutant.seedsMax),
          "--first-failure",
        ],
        { cwd: dir, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      );
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const out = run.stdout ?? "";
      const summary = out.trim().split("\n").at(-1) ?? "";
      const failLine = out.split("\n").find((l) => l.startsWith("FAIL "));
      if (run.status === 1 && failLine !== undefined) {
        const why = out
          .split("\n")
          .filter((l) =>
            /^(raft |linearizability|convergence|idempotency|the run stopped|Operation|.*not linearizable)/.test(
              l,
            ),
          )
          .slice(0, 2)
          .map((l) => l.slice(0, 200));
        process.stdout.write(
          `CAUGHT  ${mutant.name}\n        ${failLine} (${seconds} s)\n        ${summary}\n`,
        );
        for (const l of why) process.stdout.write(`        ${l}\n`);
      } else {
        survived++;
        process.stdout.write(
          `SURVIVED ${mutant.name}: exit ${run.status} after ${seconds} s\n${summary}\n${run.stderr ?? ""}\n`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    survived === 0 ? "every planted bug was caught\n" : `${survived} mutant(s) survived\n`,
  );
  return survived === 0 ? 0 : 1;
}

process.exitCode = main();
