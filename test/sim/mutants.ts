// `npm run sim:mutants`: shows that the simulator's checkers catch real bugs. Each mutant copies
// src/ and test/ to a scratch directory, plants one known bug with a textual patch (the script fails
// loudly if the anchor text is not found exactly once), runs the simulator there over a bounded
// number of seeds until the first failing one, and expects a failure. The working tree is never
// modified. Exits 1 if any mutant survives or any patch does not apply.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { mutants } from "./mutant-list.js";
import { plantMutant } from "./plant-mutant.js";

const root = new URL("../..", import.meta.url).pathname;
const firstSeed = 1;

function main(): number {
  const only = process.argv[2];
  let survived = 0;
  for (const mutant of mutants) {
    if (only !== undefined && !mutant.name.includes(only)) continue;
    const dir = plantMutant(root, mutant);
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
