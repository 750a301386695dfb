// `npm run faults:mutants [name-substring]`: shows that the fault suite catches real bugs. Each
// mutant is planted in a scratch copy of the sources (test/sim/plant-mutant.ts), and `npm run
// faults` runs there with the mutant's arguments, seed after seed, until one fails (exit 1 with a
// checker's finding). Exits 1 if any mutant survives every seed.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { runMutants } from "../sim/plant-mutant.js";
import { faultMutants } from "./mutant-list.js";

const root = new URL("../..", import.meta.url).pathname;

process.exitCode = runMutants(root, faultMutants, process.argv[2], (mutant, dir) => {
  const tried: string[] = [];
  for (const seed of mutant.seeds) {
    const started = performance.now();
    const args = [...mutant.args, "--seed", String(seed)];
    const run = spawnSync(process.execPath, ["--import", "tsx", join(dir, "test/faults/main.ts"), ...args], {
      cwd: dir,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    const lines = (run.stdout ?? "").split("\n");
    const at = lines.findIndex((l) => / FAIL seed /.test(l));
    if (run.status === 1 && at >= 0) {
      return {
        caught: true,
        detail: [
          `npm run faults -- ${args.join(" ")}: ${(lines[at] ?? "").trim()} (${seconds} s)`,
          (lines[at + 1] ?? "").trim().slice(0, 300),
        ],
      };
    }
    tried.push(`seed ${seed}: exit ${run.status} after ${seconds} s ${(run.stderr ?? "").slice(-500)}`);
  }
  return { caught: false, detail: tried };
});
