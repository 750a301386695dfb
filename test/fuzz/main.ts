// `npm run fuzz -- --seconds N [--seed S] [--target NAME[,NAME]] [--batch B] [--inputs N]`: feeds
// random and mutated inputs to every parser of two live node processes (run.ts) and prints, per
// target, how many inputs were tried and how they were refused. It prints its seed first; the same
// seed sends the same inputs, and `--batch B` replays one batch alone. Exits 1 on any finding or
// oracle failure (crash, hang, internal error, changed data).
import { randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { describeReport, fuzzTargets, runFuzz } from "./run.js";

function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

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
  const seed = integer("seed", values.seed, 0, 2 ** 31 - 1) ?? randomInt(2 ** 31 - 1);
  const seconds = integer("seconds", values.seconds, 1, 24 * 3600);
  const batch = integer("batch", values.batch, 0, 2 ** 31 - 1);
  const inputsPerTarget = integer("inputs", values.inputs, 1, 10_000_000);
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

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(2);
  },
);
