// `npm run bench:redis`: Debian's redis-benchmark against a 3-node Cairn cluster (the leader's Redis
// port; fsync on a majority before every acknowledgement) and, in the same run, a single
// redis-server with `--appendonly yes --appendfsync always` (fsync before every acknowledgement on
// one machine), both on 127.0.0.1. For SET, GET, INCR and XADD (a custom command), 50 clients, with
// no pipelining and with `-P 16`, each point a fixed number of requests, the two systems taking
// turns in a shuffled order each round (the machine is shared, so a change in its load hits both);
// the table shows medians over the rounds, and the CPU each system's processes spent per request.
// Run alone with `node --import tsx bench/redis.ts` after `npm run build`.
// Options: --requests N without pipelining (default 20000), --pipelined N with -P 16 (default
// 100000), --rounds N (default 1), --clients N (default 50).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Prng } from "../src/util/prng.js";
import { cpuSecondsOf, median, option as optionOf, sleep, startBenchCluster, waitFor } from "./load.js";

/** A Redis server under test: where it listens and which processes to charge. */
interface System {
  readonly name: "cairn" | "redis";
  readonly host: string;
  readonly port: number;
  readonly pids: readonly number[];
  close(): Promise<void>;
}

/** Runs a command to completion; resolves with its stdout, rejects on a non-zero exit. */
function run(command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} exited ${code}: ${err.slice(0, 500)}`));
    });
  });
}

async function startCairn(): Promise<System> {
  const cluster = await startBenchCluster(29281, 29201, undefined, 26381);
  const address = cluster.leaderRedisAddress;
  if (address === null) {
    await cluster.close();
    throw new Error("the leader serves no Redis port");
  }
  const [host = "127.0.0.1", port = "0"] = address.split(":");
  return { name: "cairn", host, port: Number(port), pids: cluster.pids, close: cluster.close };
}

async function startRedis(): Promise<System> {
  const dir = await mkdtemp(join(tmpdir(), "redis-bench-"));
  const port = 26399;
  const child: ChildProcess = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
    ],
    { stdio: "ignore" },
  );
  const close = async () => {
    child.kill("SIGKILL");
    await sleep(200);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor("redis-server", async () =>
      (await run("redis-cli", ["-p", String(port), "ping"], 5_000)).startsWith("PONG") ? true : undefined,
    );
    return { name: "redis", host: "127.0.0.1", port, pids: [child.pid ?? 0], close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** One benchmark point. */
interface Point {
  readonly op: "SET" | "GET" | "INCR" | "XADD";
  readonly pipeline: 1 | 16;
}

/** What one run of redis-benchmark measured. */
interface Measured {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of the system's processes per request, microseconds. */
  readonly cpuMicrosPerOp: number;
  /** CPU of its busiest process per request (a Raft leader), microseconds. */
  readonly busiestCpuMicrosPerOp: number;
}

/** Runs redis-benchmark for one point against one system. */
async function measure(system: System, point: Point, requests: number, clients: number): Promise<Measured> {
  const what =
    point.op === "XADD" ? ["XADD", "bench:stream", "*", "field", "value"] : ["-t", point.op.toLowerCase()];
  const args = [
    "-h",
    system.host,
    "-p",
    String(system.port),
    "-c",
    String(clients),
    "-n",
    String(requests),
    "-P",
    String(point.pipeline),
    "-r",
    "10000",
    "--csv",
    ...what,
  ];
  const before = system.pids.map(cpuSecondsOf);
  const csv = await run("redis-benchmark", args, 300_000);
  const used = system.pids.map((pid, i) => cpuSecondsOf(pid) - (before[i] ?? 0));
  const row = csv
    .trim()
    .split("\n")
    .at(-1)
    ?.split('","')
    .map((f) => f.replaceAll('"', ""));
  const field = (i: number) => Number(row?.[i] ?? Number.NaN);
  return {
    opsPerSecond: field(1),
    p50Ms: field(4),
    p99Ms: field(6),
    cpuMicrosPerOp: (used.reduce((a, b) => a + b, 0) * 1e6) / requests,
    busiestCpuMicrosPerOp: (Math.max(0, ...used) * 1e6) / requests,
  };
}

/** Runs the Redis benchmark and returns its report (a markdown table and the ratios). */
export async function runRedisBench(args: readonly string[]): Promise<string> {
  const option = (name: string, fallback: string) => optionOf(args, name, fallback);
  const requests = Number(option("requests", "20000"));
  const pipelined = Number(option("pipelined", "100000"));
  const rounds = Number(option("rounds", "1"));
  const clients = Number(option("clients", "50"));
  const points: Point[] = [];
  for (const pipeline of [1, 16] as const) {
    for (const op of ["SET", "GET", "INCR", "XADD"] as const) points.push({ op, pipeline });
  }
  const systems = [await startCairn(), await startRedis()];
  const results = new Map<string, Measured[]>();
  const prng = new Prng(Date.now());
  const load: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const point of points) {
        const order = prng.below(2) === 0 ? systems : [...systems].reverse();
        for (const system of order) {
          const key = `${system.name} ${point.op} ${point.pipeline}`;
          const n = point.pipeline === 1 ? requests : pipelined;
          const m = await measure(system, point, n, clients);
          results.set(key, [...(results.get(key) ?? []), m]);
          load.push(loadavg()[0] ?? 0);
        }
      }
    }
  } finally {
    for (const system of systems) await system.close();
  }
  const mid = (key: string, pick: (m: Measured) => number) => median((results.get(key) ?? []).map(pick));
  const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "-");
  const lines = [
    `redis-benchmark, ${clients} clients, ${requests} requests per point (${pipelined} with -P 16), ${rounds} round(s), medians; load average ${fmt(Math.min(...load), 1)} to ${fmt(Math.max(...load), 1)}`,
    "",
    "| command | pipeline | Cairn ops/s | Redis ops/s | Cairn / Redis | Cairn p50 ms | Redis p50 ms | Cairn p99 ms | Redis p99 ms | Cairn CPU µs/op (leader) | Redis CPU µs/op |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const point of points) {
    const c = `cairn ${point.op} ${point.pipeline}`;
    const r = `redis ${point.op} ${point.pipeline}`;
    const ratio = mid(c, (m) => m.opsPerSecond) / mid(r, (m) => m.opsPerSecond);
    lines.push(
      `| ${point.op} | ${point.pipeline} | ${fmt(mid(c, (m) => m.opsPerSecond))} | ${fmt(mid(r, (m) => m.opsPerSecond))} | ${fmt(ratio, 2)} | ${fmt(
        mid(c, (m) => m.p50Ms),
        2,
      )} | ${fmt(
        mid(r, (m) => m.p50Ms),
        2,
      )} | ${fmt(
        mid(c, (m) => m.p99Ms),
        2,
      )} | ${fmt(
        mid(r, (m) => m.p99Ms),
        2,
      )} | ${fmt(mid(c, (m) => m.cpuMicrosPerOp))} (${fmt(mid(c, (m) => m.busiestCpuMicrosPerOp))}) | ${fmt(mid(r, (m) => m.cpuMicrosPerOp))} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runRedisBench(process.argv.slice(2)));
}
