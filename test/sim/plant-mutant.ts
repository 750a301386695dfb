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
