// `npm run faults:soak -- [--runs 30] [--seconds 300] [--parallel 2] [--first-seed N] [--out DIR]
// [-- extra faults arguments]`: many fault runs (main.ts) against Cairn, each with its own seed
// (first-seed, first-seed + 1, ...), a few at a time, each in its own process on the compiled build
// (compiled once here). Every run's output is kept in DIR/seed-N.log; a line per run as it ends, then
// the totals: runs passed, operations checked, faults applied, appends acknowledged and the wall time.
// Exits 1 when any run failed (its seed replays it: `npm run faults -- --seed N --seconds S --build`).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { integerOption, runScript } from "../support/script-main.js";

const root = new URL("../..", import.meta.url).pathname;

/** What one run's output says about it. */
interface SoakRun {
  readonly seed: number;
  readonly passed: boolean;
  readonly faults: number;
  readonly operations: number;
  readonly appends: number;
  readonly seconds: number;
  /** The run's verdict line, or why there is none. */
  readonly verdict: string;
}

/** Reads a run's counts from main.ts's report lines. */
function parseRun(seed: number, exitCode: number | null, output: string, seconds: number): SoakRun {
  const counts = /cairn: (\d+) faults applied; KV: (\d+) operations checked/.exec(output);
  const appends = /cairn: streams: (\d+) appends acked/.exec(output);
  const verdict = /cairn: (PASS|FAIL) seed .*/.exec(output);
  return {
    seed,
    passed: exitCode === 0 && verdict?.[1] === "PASS",
    faults: Number(counts?.[1] ?? 0),
    operations: Number(counts?.[2] ?? 0),
    appends: Number(appends?.[1] ?? 0),
    seconds,
    verdict: verdict?.[0] ?? `no verdict (exit ${exitCode ?? "signal"})`,
  };
}

function runOne(seed: number, seconds: number, extra: readonly string[], logFile: string): Promise<SoakRun> {
  const started = performance.now();
  const args = [
    "--import",
    "tsx",
    join(root, "test/faults/main.ts"),
    "--built",
    "--seconds",
    String(seconds),
  ];
  const child = spawn(process.execPath, [...args, "--seed", String(seed), ...extra], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  return new Promise((resolve) => {
    child.on("close", (code) => {
      writeFileSync(logFile, output);
      resolve(parseRun(seed, code, output, (performance.now() - started) / 1000));
    });
  });
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      runs: { type: "string" },
      seconds: { type: "string" },
      parallel: { type: "string" },
      "first-seed": { type: "string" },
      out: { type: "string" },
    },
  });
  const runs = integerOption("runs", values.runs, 30, 1, 1_000);
  const seconds = integerOption("seconds", values.seconds, 300, 5, 3_600);
  const parallel = integerOption("parallel", values.parallel, 2, 1, 8);
  const firstSeed = integerOption(
    "first-seed",
    values["first-seed"],
    Math.floor(Date.now() / 1000) % 1_000_000,
    0,
    2 ** 31 - 1_000,
  );
  const out = values.out ?? join(tmpdir(), `cairn-soak-${firstSeed}`);
  mkdirSync(out, { recursive: true });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(
    `soak: ${runs} runs of ${seconds} s, ${parallel} at a time, seeds ${firstSeed}..${firstSeed + runs - 1}; logs in ${out}`,
  );
  const built = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
  if (built.status !== 0) throw new Error("npm run build failed");
  const started = performance.now();
  const results: SoakRun[] = [];
  let next = 0;
  const worker = async () => {
    while (next < runs) {
      const seed = firstSeed + next++;
      const r = await runOne(seed, seconds, positionals, join(out, `seed-${seed}.log`));
      results.push(r);
      say(
        `${results.length}/${runs} seed ${seed}: ${r.passed ? "PASS" : "FAIL"} in ${r.seconds.toFixed(0)} s, ${r.faults} faults, ${r.operations} KV operations, ${r.appends} appends acked${r.passed ? "" : ` (${r.verdict})`}`,
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const sum = (f: (r: SoakRun) => number) => results.reduce((a, r) => a + f(r), 0);
  const failed = results.filter((r) => !r.passed).map((r) => r.seed);
  say(
    `soak: ${results.length - failed.length} of ${results.length} runs passed in ${((performance.now() - started) / 60_000).toFixed(1)} min; ${sum((r) => r.operations)} KV operations checked, ${sum((r) => r.faults)} faults applied, ${sum((r) => r.appends)} appends acked`,
  );
  if (failed.length > 0) say(`soak: failed seeds ${failed.join(", ")}`);
  return failed.length === 0 ? 0 : 1;
}

runScript(main);
