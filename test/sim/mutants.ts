// `npm run sim:mutants`: shows that the simulator's checkers catch real bugs. Each mutant copies
// src/ and test/ to a scratch directory, plants one known bug with a textual patch (the script fails
// loudly if the anchor text is not found exactly once), runs the simulator there over a bounded
// number of seeds until the first failing one, and expects a failure. The working tree is never
// modified. Exits 1 if any mutant survives or any patch does not apply.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { mutants } from "./mutant-list.js";
import { runMutants } from "./plant-mutant.js";

const root = new URL("../..", import.meta.url).pathname;
const firstSeed = 1;

process.exitCode = runMutants(root, mutants, process.argv[2], (mutant, dir) => {
  const started = performance.now();
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
  const summary = out.split("\n").find((l) => l.startsWith(`level ${mutant.level}: seeds`)) ?? "";
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
    return { caught: true, detail: [`${failLine} (${seconds} s)`, summary, ...why] };
  }
  return {
    caught: false,
    detail: [`exit ${run.status} after ${seconds} s`, summary, ...(run.stderr ?? "").split("\n")],
  };
});
