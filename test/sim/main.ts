// The simulator's command line: `npm run sim -- [--seed N] [--level L] [--count K]`. One seed prints
// its options, a readable trace and the report; many seeds print only failures (each with its
// replay line) and a summary with the wall time, seeds per second and the client operations done; `--first-failure` stops at the
// first failing seed. Without --seed the run starts from a fresh seed drawn from the clock and prints
// it first, so `npm run sim -- --level 1 --count 1000` explores new seeds each time and still replays. Failures a known product issue explains (known-issues.ts) print one KNOWN line
// each and are counted apart. Exits 1 if any other seed failed.
import { parseSimArgs, replayLine, SimArgsError } from "./sim-options.js";
import { runSeed } from "./simulate.js";

/** Splits `--count K` and `--first-failure` off the arguments that parseSimArgs reads. */
function splitCount(argv: readonly string[]): { rest: string[]; count: number; firstFailure: boolean } {
  const rest: string[] = [];
  let count = 1;
  let firstFailure = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--first-failure") {
      firstFailure = true;
      continue;
    }
    if (arg !== "--count") {
      if (arg !== undefined) rest.push(arg);
      continue;
    }
    const value = argv[i + 1] ?? "";
    if (!/^[1-9][0-9]*$/.test(value))
      throw new SimArgsError(`--count needs a positive integer, got ${value}`);
    count = Number(value);
    i++;
  }
  return { rest, count, firstFailure };
}

/** The run in progress, so that an error escaping it (an unhandled rejection) still names its seed. */
let current = "";

process.on("unhandledRejection", (error) => {
  const why = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stdout.write(`FAIL ${current}\nan unhandled rejection escaped the run: ${why}\n`);
  process.exit(1);
});

async function main(argv: readonly string[]): Promise<number> {
  const { rest, count, firstFailure } = splitCount(argv);
  // Without --seed, start from a seed drawn from the clock: it is printed, so the run replays.
  const { seed, level } = parseSimArgs(rest, Date.now() % 1_000_000_000);
  if (count === 1) {
    current = replayLine({ seed, level });
    const lines: string[] = [];
    const report = await runSeed(seed, level, (line) => lines.push(line));
    process.stdout.write(`trace:\n${lines.map((l) => `  ${l}`).join("\n")}\n\n${report.text}\n`);
    return report.ok ? 0 : 1;
  }
  if (!rest.includes("--seed")) {
    process.stdout.write(
      `level ${level}: fresh seeds from ${seed} (replay: ${replayLine({ seed, level })} --count ${count})\n`,
    );
  }
  const started = performance.now();
  let failed = 0;
  let ran = 0;
  // Failures a known product issue explains: counted apart, one line each (replay for the report).
  const known = new Map<string, number[]>();
  // What the clients got done over the batch: a change that slows the cluster shows here first.
  const ops = { issued: 0, ok: 0, appended: 0, acked: 0 };
  for (let s = seed; s < seed + count; s++) {
    current = replayLine({ seed: s, level });
    const report = await runSeed(s, level);
    ran++;
    if (report.report !== undefined) {
      ops.issued += report.report.workloadCounters.issued;
      ops.ok += report.report.workloadCounters.ok;
      ops.appended += report.report.sideCounters["appended"] ?? 0;
      ops.acked += report.report.sideCounters["acked"] ?? 0;
    }
    if (report.ok) continue;
    if (report.known !== undefined) {
      const seeds = known.get(report.known.id) ?? [];
      seeds.push(s);
      known.set(report.known.id, seeds);
      process.stdout.write(`KNOWN ${report.known.id}: ${replayLine({ seed: s, level })}\n`);
      continue;
    }
    failed++;
    process.stdout.write(`${report.text}\n\n`);
    if (firstFailure) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const knownCount = [...known.values()].reduce((n, seeds) => n + seeds.length, 0);
  const knownText =
    knownCount === 0
      ? ""
      : `, ${knownCount} failed on known product issues (${[...known].map(([id, seeds]) => `${id}: ${seeds.length}`).join(", ")})`;
  process.stdout.write(
    `level ${level}: seeds ${seed}..${seed + ran - 1}: ${ran - failed - knownCount} passed, ${failed} failed${knownText} in ${seconds.toFixed(1)} s (${(ran / seconds).toFixed(1)} seeds/s)\n` +
      `client ops: ${ops.issued} kv issued, ${ops.ok} answered ok; ${ops.appended} stream appends acknowledged, ${ops.acked} messages acked\n`,
  );
  return failed === 0 ? 0 : 1;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof Error && "code" in error) {
    process.stderr.write(`${String(error.code)}: ${error.message}\n`);
    process.exitCode = 2;
  } else throw error;
}
