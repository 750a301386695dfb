#!/usr/bin/env node
// The one test command (`npm test`): format and lint check, type check, then every test file under
// test/ through node:test with tsx. Node 20's --test does not expand globs, so the files are found here.
// Flags: --only-tests skips the static checks; any other argument filters test files by substring.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
const onlyTests = args.includes("--only-tests");
const filters = args.filter((a) => !a.startsWith("--"));

/** Runs a command inheriting stdio; exits with its status if it fails. */
function run(label, cmd, cmdArgs) {
  const started = Date.now();
  process.stdout.write(`\n== ${label}\n`);
  const result = spawnSync(cmd, cmdArgs, { cwd: root, stdio: "inherit" });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    process.stdout.write(`== ${label} failed (${seconds}s)\n`);
    process.exit(result.status ?? 1);
  }
  process.stdout.write(`== ${label} ok (${seconds}s)\n`);
}

/** Every *.test.ts file below `dir`, sorted, as paths relative to the repo root. */
function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith(".test.ts")) out.push(relative(root, path));
  }
  return out.sort();
}

const bin = (name) => join(root, "node_modules", ".bin", name);

if (!onlyTests && filters.length === 0) {
  run("format and lint (biome)", bin("biome"), ["check", "."]);
  run("type-aware lint (eslint)", bin("eslint"), ["--max-warnings=0", "."]);
  run("typecheck (tsc)", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);
  run("typecheck the dashboard (svelte-check)", bin("svelte-check"), [
    "--tsconfig",
    "src/dashboard/tsconfig.json",
    "--fail-on-warnings",
  ]);
}

const files = findTests(join(root, "test")).filter(
  (f) => filters.length === 0 || filters.some((s) => f.includes(s)),
);
if (files.length === 0) {
  process.stdout.write("no test files matched\n");
  process.exit(1);
}
run(`tests (${files.length} files)`, process.execPath, [
  "--import",
  "tsx",
  "--test",
  "--test-reporter=spec",
  "--test-concurrency=2",
  "--test-timeout=600000",
  ...files,
]);
