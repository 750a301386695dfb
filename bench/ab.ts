// `node --import tsx bench/ab.ts --a DIR --b DIR`: compares two builds of Cairn side by side on this
// noisy shared machine. Each DIR holds a `bin/cairn.js` (and the `dist/` it imports), for example a
// copy of the tree at the base commit and the working tree. Each round starts a fresh 3-node
// cluster per build, both running at once, and runs every load point on one and right after on the
// other (which goes first is shuffled per point), so the two builds of a point meet nearly the same
// load from the rest of this shared machine. The table shows the medians over the rounds and, for
// B/A, the median of the rounds' own ratios with their range: a paired comparison, which slow
// swings of the machine's load do not move the way they move absolute figures. Not part of
// `npm test`.
// Options: --rounds N (default 5), --seconds N per point (default 4), --points put:1,put:64,get:64
// (op:clients; ops: put, get, append), --a-node-options / --b-node-options "FLAGS" (NODE_OPTIONS
// for that build's node processes).
import { Prng } from "../src/util/prng.js";
import { type BenchCluster, type LoadResult, median, option as optionOf, startBenchCluster } from "./load.js";
import { parsePoints, preparePoints, runPoint } from "./points.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => optionOf(args, name, fallback);
const dirs = { A: option("a", ""), B: option("b", "") };
const nodeOptions = { A: option("a-node-options", ""), B: option("b-node-options", "") };
if (dirs.A === "" || dirs.B === "") {
  console.error("usage: bench/ab.ts --a DIR --b DIR [--rounds N] [--seconds N] [--points put:1,put:64]");
  process.exit(2);
}
const rounds = Number(option("rounds", "5"));
const seconds = Number(option("seconds", "4"));
const points = parsePoints(option("points", "put:1,put:64,put:256,get:64"));

/** A build's cluster for one round, loaded with the keys and the stream the points use. */
async function startBuild(build: "A" | "B"): Promise<BenchCluster> {
  // The node processes inherit NODE_OPTIONS: a way to compare V8 or Node flags on one build.
  const saved = process.env["NODE_OPTIONS"];
  if (nodeOptions[build] !== "") process.env["NODE_OPTIONS"] = nodeOptions[build];
  const [httpPort, peerPort] = build === "A" ? ([28381, 28301] as const) : ([28481, 28401] as const);
  const cluster = await startBenchCluster(httpPort, peerPort, `${dirs[build]}/bin/cairn.js`).finally(() => {
    if (saved === undefined) delete process.env["NODE_OPTIONS"];
    else process.env["NODE_OPTIONS"] = saved;
  });
  try {
    await preparePoints(cluster);
    return cluster;
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

const prng = new Prng(Date.now() % 2 ** 31);
const samples = { A: [] as LoadResult[][], B: [] as LoadResult[][] };
for (let r = 0; r < rounds; r++) {
  // Both clusters run for the whole round; each point runs on one and then at once on the other,
  // in a shuffled order, so both meet nearly the same load from the rest of the machine.
  const clusters = { A: await startBuild("A"), B: await startBuild("B") };
  try {
    const results = { A: [] as LoadResult[], B: [] as LoadResult[] };
    for (const point of points) {
      const order: ("A" | "B")[] = prng.below(2) === 0 ? ["A", "B"] : ["B", "A"];
      for (const build of order) results[build].push(await runPoint(clusters[build], point, seconds));
    }
    for (const build of ["A", "B"] as const) {
      samples[build].push(results[build]);
      console.error(
        `round ${r + 1} ${build}: ${results[build].map((x, i) => `${points[i]?.op}:${points[i]?.clients}=${x.opsPerSecond.toFixed(0)}/s p50 ${x.p50Ms.toFixed(2)}`).join("  ")}`,
      );
    }
  } finally {
    await clusters.A.close();
    await clusters.B.close();
  }
}

const load = (await import("node:os")).loadavg();
console.log(
  `${rounds} rounds, ${seconds} s per point, load average ${load.map((x) => x.toFixed(1)).join(" ")}; medians; B/A: median of the rounds' ratios [lowest, highest]\n`,
);
console.log(
  "| op | clients | A ops/s | B ops/s | B/A ops/s | A p50 ms | B p50 ms | A p99 ms | B p99 ms | A CPU µs/op | B CPU µs/op | B/A CPU/op |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
points.forEach((point, i) => {
  const at = (build: "A" | "B", round: number) => samples[build][round]?.[i] ?? ({} as LoadResult);
  const pick = (build: "A" | "B", f: (x: LoadResult) => number) =>
    median(samples[build].map((run) => f(run[i] ?? ({} as LoadResult))));
  const ratio = (f: (x: LoadResult) => number) => {
    const ratios = samples.A.map((_, round) => f(at("B", round)) / f(at("A", round)));
    return `${median(ratios).toFixed(2)} [${Math.min(...ratios).toFixed(2)}, ${Math.max(...ratios).toFixed(2)}]`;
  };
  const cells = [
    point.op,
    point.clients,
    pick("A", (x) => x.opsPerSecond).toFixed(0),
    pick("B", (x) => x.opsPerSecond).toFixed(0),
    ratio((x) => x.opsPerSecond),
    pick("A", (x) => x.p50Ms).toFixed(2),
    pick("B", (x) => x.p50Ms).toFixed(2),
    pick("A", (x) => x.p99Ms).toFixed(2),
    pick("B", (x) => x.p99Ms).toFixed(2),
    pick("A", (x) => x.cpuMicrosPerOp).toFixed(0),
    pick("B", (x) => x.cpuMicrosPerOp).toFixed(0),
    ratio((x) => x.cpuMicrosPerOp),
  ];
  console.log(`| ${cells.join(" | ")} |`);
});
