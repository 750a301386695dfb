// Plants a bug in a scratch copy of the sources, for the mutant runs (the simulator's and the fault
// suite's): src/, test/ and the package files are copied, node_modules is linked, and each patch's
// anchor must occur exactly once or nothing is planted. The working tree is never modified.
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { anchorProblems, type Mutant } from "./mutant-list.js";

/** Copies the sources under `root` to a new scratch directory, applies the patches, and returns it. */
export function plantMutant(root: string, mutant: Pick<Mutant, "name" | "patches">): string {
  const dir = mkdtempSync(join(tmpdir(), "cairn-mutant-"));
  for (const part of ["src", "test", "package.json", "tsconfig.json"]) {
    cpSync(join(root, part), join(dir, part), { recursive: true });
  }
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  const problems = anchorProblems(mutant, (file) => readFileSync(join(dir, file), "utf8"));
  if (problems.length > 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(problems.join("\n"));
  }
  for (const patch of mutant.patches) {
    const path = join(dir, patch.file);
    const text = readFileSync(path, "utf8");
    writeFileSync(
      path,
      text.replace(patch.anchor, () => patch.replacement),
    );
  }
  return dir;
}

/** What one mutant's run showed: caught (with the finding) or survived (with what was tried). */
export interface MutantVerdict {
  readonly caught: boolean;
  /** Lines printed under the mutant's name. */
  readonly detail: readonly string[];
}

/**
 * Plants each mutant (those whose name contains `only`, if given) in turn, lets `judge` run the
 * checkers in the planted copy, prints CAUGHT or SURVIVED with the details, and removes the copy.
 * Returns the exit status: 0 when every mutant was caught.
 */
export function runMutants<M extends Pick<Mutant, "name" | "patches">>(
  root: string,
  mutants: readonly M[],
  only: string | undefined,
  judge: (mutant: M, dir: string) => MutantVerdict,
): number {
  let survived = 0;
  for (const mutant of mutants) {
    if (only !== undefined && !mutant.name.includes(only)) continue;
    const dir = plantMutant(root, mutant);
    try {
      const verdict = judge(mutant, dir);
      if (!verdict.caught) survived++;
      process.stdout.write(`${verdict.caught ? "CAUGHT  " : "SURVIVED"} ${mutant.name}\n`);
      for (const line of verdict.detail) process.stdout.write(`        ${line}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    survived === 0 ? "every planted bug was caught\n" : `${survived} mutant(s) survived\n`,
  );
  return survived === 0 ? 0 : 1;
}
