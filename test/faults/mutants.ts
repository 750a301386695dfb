// `npm run faults:mutants [name-substring]`: shows that the fault suite catches real bugs. Each
// mutant is planted in a scratch copy of the sources (test/sim/plant-mutant.ts), and `npm run
// faults` runs there with the mutant's arguments, seed after seed, until one fails (exit 1 with a
// checker's finding). Exits 1 if any mutant survives every seed.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { plantMutant } from "../sim/plant-mutant.js";
import { faultMutants } from "./mutant-list.js";

const root = new URL("../..", import.meta.url).pathname;

function main(): number {
  const only = process.argv[2];
  let survived = 0;
  for (const mutant of faultMutants) {
    if (only !== undefined && !mutant.name.includes(only)) continue;
    const dir = plantMutant(root, mutant);
    try {
      let caught: string | undefined;
      const tried: string[] = [];
      for (const seed of mutant.seeds) {
        const started = performance.now();
        const args = [...mutant.args, "--seed", String(seed)];
        const run = spawnSync(
          process.execPath,
          ["--import", "tsx", join(dir, "test/faults/main.ts"), ...args],
          {
            cwd: dir,
            encoding: "utf8",
            maxBuffer: 64 * 1024 * 1024,
          },
        );
        const seconds = ((performance.now() - started) / 1000).toFixed(0);
        const out = run.stdout ?? "";
        const failLine = out.split("\n").find((l) => / FAIL seed /.test(l));
        if (run.status === 1 && failLine !== undefined) {
          const finding = out.split("\n")[out.split("\n").indexOf(failLine) + 1] ?? "";
          caught = `${failLine.trim()} (${seconds} s)\n        ${finding.trim().slice(0, 300)}`;
          break;
        }
        tried.push(`seed ${seed}: exit ${run.status} after ${seconds} s ${run.stderr.slice(-500)}`);
      }
      if (caught !== undefined) {
        process.stdout.write(
          `CAUGHT   ${mutant.name}\n        npm run faults -- ${mutant.args.join(" ")}: ${caught}\n`,
        );
      } else {
        survived++;
        process.stdout.write(`SURVIVED ${mutant.name}\n        ${tried.join("\n        ")}\n`);
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
