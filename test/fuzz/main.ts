// `npm run fuzz -- --seconds N [--seed S] [--target NAME[,NAME]] [--batch B] [--inputs N]`: feeds
// random and mutated inputs to every parser of two live node processes (run.ts) and prints, per
// target, how many inputs were tried and how they were refused. It prints its seed first; the same
// seed sends the same inputs, and `--batch B` replays one batch alone. Exits 1 on any finding or
// oracle failure (crash, hang, internal error, changed data).
import { randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { integerOption } from "../support/script-main.js";
import { describeReport, fuzzTargets, runFuzz } from "./run.js";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string" },
      seed: { type: "string" },
      target: { type: "string" },
      batch: { type: "string" },
      inputs: { type: "string" },
    },
  });
  const seed = integerOption("seed", values.seed, randomInt(2 ** 31 - 1), 0, 2 ** 31 - 1);
  const seconds = integerOption("seconds", values.seconds, undefined, 1, 24 * 3600);
  const batch = integerOption("batch", values.batch, undefined, 0, 2 ** 31 - 1);
  const inputsPerTarget = integerOption("inputs", values.inputs, undefined, 1, 10_000_000);
  const targets = values.target?.split(",");
  const known = fuzzTargets.map((t) => t.name);
  for (const t of targets ?? [])
    if (!known.includes(t)) throw new Error(`unknown target ${t}; targets: ${known.join(", ")}`);
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  say(`fuzz seed ${seed}`);
  const report = await runFuzz({
    seed,
    ...(seconds !== undefined
      ? { seconds }
      : batch === undefined && inputsPerTarget === undefined
        ? { seconds: 60 }
        : {}),
    ...(inputsPerTarget !== undefined ? { inputsPerTarget } : {}),
    ...(targets !== undefined ? { targets } : {}),
    ...(batch !== undefined ? { batch } : {}),
    say,
  });
  for (const line of describeReport(report)) say(line);
  const findings = [...report.tallies.values()].reduce((n, t) => n + t.findings.length, 0);
  const failed = findings > 0 || report.problems.length > 0;
  say(
    failed
      ? `FAIL seed ${seed}: ${findings} findings, ${report.problems.length} problems`
      : `PASS seed ${seed}`,
  );
  return failed ? 1 : 0;
}

// process.exit, not an exit status: a connection the fuzzer left half-open must not keep it alive.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(2);
  },
);
