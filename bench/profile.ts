// `node --import tsx bench/profile.ts --point append:64`: where the nodes' time goes at one load
// point. Starts a 3-node cluster of this tree's build (or `--dir DIR`'s) with V8's CPU profiler on,
// prepares it as bench/ab.ts does, runs the point and prints, for the leader and then for the
// followers together, the time per operation of each layer of the code and of the busiest
// functions, counted over the measured seconds only. Profiles are kept in `--out DIR` (default: a
// temp directory) for a closer look in Chrome's DevTools. Not part of `npm test`; run
// `npm run build` first. Options: --seconds N (default 8), --top N functions (default 25),
// --before op:clients,... (points run first, unmeasured, for the state they leave: bench/ab.ts runs
// its points in order on one cluster, so its gets follow its puts).
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ProfileSummary, summarizeProfile } from "./cpu-profile.js";
import { option as optionOf, startBenchCluster } from "./load.js";
import { parsePoints, preparePoints, runPoint } from "./points.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => optionOf(args, name, fallback);
const [point] = parsePoints(option("point", "put:64"));
if (point === undefined) throw new Error("--point op:clients");
const beforeText = option("before", "");
const before = beforeText === "" ? [] : parsePoints(beforeText);
const seconds = Number(option("seconds", "8"));
const top = Number(option("top", "25"));
const dir = option("dir", new URL("..", import.meta.url).pathname);
const out = option("out", "") || (await mkdtemp(join(tmpdir(), "cairn-profile-")));

const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);
const saved = process.env["CAIRN_BENCH_NODE_FLAGS"];
process.env["CAIRN_BENCH_NODE_FLAGS"] = `${saved ?? ""} --cpu-prof --cpu-prof-dir=${out}`;
const cluster = await startBenchCluster(28581, 28501, join(dir, "bin/cairn.js")).finally(() => {
  if (saved === undefined) delete process.env["CAIRN_BENCH_NODE_FLAGS"];
  else process.env["CAIRN_BENCH_NODE_FLAGS"] = saved;
});
let measured: { ops: number; opsPerSecond: number; busiestCpuMicrosPerOp: number; cpuMicrosPerOp: number };
const window = { fromMicros: 0, toMicros: 0 };
const leaderPort = new URL(cluster.leaderUrl).port;
try {
  await preparePoints(cluster);
  for (const earlier of before) await runPoint(cluster, earlier, seconds);
  await runPoint(cluster, point, 2);
  window.fromMicros = monotonicMicros();
  measured = await runPoint(cluster, point, seconds);
  window.toMicros = monotonicMicros();
} finally {
  // The profiles are written as the processes exit.
  await cluster.close();
}
const leaderPid = cluster.pids[Number(leaderPort) - 28581];

async function summaryOf(pid: number | undefined): Promise<ProfileSummary> {
  const file = (await readdir(out)).find((f) => f.includes(`.${pid}.`) && f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error(`no profile of process ${pid} in ${out}`);
  return summarizeProfile(JSON.parse(await readFile(join(out, file), "utf8")), window, measured.ops);
}

function print(title: string, summaries: readonly ProfileSummary[]): void {
  const merge = (pick: (s: ProfileSummary) => ReadonlyMap<string, number>) => {
    const sum = new Map<string, number>();
    for (const s of summaries) for (const [k, v] of pick(s)) sum.set(k, (sum.get(k) ?? 0) + v);
    return [...sum].sort((a, b) => b[1] - a[1]);
  };
  const busy = summaries.reduce((t, s) => t + s.busyMicrosPerOp, 0);
  console.log(`\n${title}: ${busy.toFixed(1)} µs per operation sampled busy\n`);
  console.log("| layer | µs/op | share |\n| --- | ---: | ---: |");
  for (const [layer, micros] of merge((s) => s.layers)) {
    if (micros / busy < 0.005) continue;
    console.log(`| ${layer} | ${micros.toFixed(1)} | ${((100 * micros) / busy).toFixed(1)}% |`);
  }
  console.log(`\n| function (self time) | µs/op |\n| --- | ---: |`);
  for (const [name, micros] of merge((s) => s.functions).slice(0, top)) {
    console.log(`| ${name} | ${micros.toFixed(1)} |`);
  }
}

console.log(
  `${point.op}:${point.clients}, ${seconds} s: ${measured.opsPerSecond.toFixed(0)} ops/s; CPU per operation ` +
    `(from /proc): leader ${measured.busiestCpuMicrosPerOp.toFixed(0)} µs, all nodes ${measured.cpuMicrosPerOp.toFixed(0)} µs; profiles in ${out}`,
);
print("leader", [await summaryOf(leaderPid)]);
print(
  "followers (together)",
  await Promise.all(cluster.pids.filter((pid) => pid !== leaderPid).map(summaryOf)),
);
