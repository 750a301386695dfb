// A closed-loop HTTP load generator shared by the benchmarks: N concurrent clients over keep-alive
// connections, each sending its next request when the previous answered, for a fixed time. Reports
// throughput, latency percentiles and the CPU the server processes spent per operation.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { type DevCluster, startDevCluster } from "../src/cli/dev-cluster.js";

/** One request to send. */
export interface RequestSpec {
  readonly method: "GET" | "PUT" | "POST";
  readonly path: string;
  readonly body?: string;
}

/** The result of one load point. */
export interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU (user + system) per successful operation, in microseconds. */
  readonly cpuMicrosPerOp: number;
  /** CPU per operation of the busiest server process (a Raft leader), in microseconds. */
  readonly busiestCpuMicrosPerOp: number;
  /** CPU per operation of this load generator, which shares the machine, in microseconds. */
  readonly clientCpuMicrosPerOp: number;
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * Sends one request and resolves with the response status once the whole response has arrived.
 * undici's low-level dispatch rather than `request`: no body stream per response, so the load
 * generator, which shares the machine with the servers it measures, takes less of it (about a
 * third less CPU per request here).
 */
function send(pool: Pool, spec: RequestSpec): Promise<number> {
  return new Promise((resolve, reject) => {
    let status = 0;
    pool.dispatch(
      {
        method: spec.method,
        path: spec.path,
        ...(spec.body !== undefined
          ? { body: spec.body, headers: { "content-type": "application/json" } }
          : {}),
      },
      {
        onRequestStart: () => {},
        onResponseStart: (_controller, statusCode) => {
          status = statusCode;
        },
        onResponseData: () => {},
        onResponseEnd: () => resolve(status),
        onResponseError: (_controller, error) => reject(error),
      },
    );
  });
}

/** Runs `clients` closed loops against `url` for `seconds`, each asking `next(i)` what to send. */
export async function runLoad(options: {
  readonly url: string;
  readonly clients: number;
  readonly seconds: number;
  readonly serverPids: readonly number[];
  readonly next: (client: number, n: number) => RequestSpec;
}): Promise<LoadResult> {
  const pool = new Pool(options.url, {
    connections: options.clients,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const latencies: number[] = [];
  let errors = 0;
  const cpuBefore = options.serverPids.map(cpuSecondsOf);
  const clientCpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const worker = async (client: number) => {
    for (let n = 0; performance.now() < deadline; n++) {
      const spec = options.next(client, n);
      const t0 = performance.now();
      try {
        const status = await send(pool, spec);
        if (status >= 200 && status < 300) latencies.push(performance.now() - t0);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, i) => worker(i)));
  const seconds = (performance.now() - started) / 1000;
  const cpuUsed = options.serverPids.map((pid, i) => cpuSecondsOf(pid) - (cpuBefore[i] ?? 0));
  const clientCpu = process.cpuUsage(clientCpuBefore);
  await pool.close();
  return loadResultOf(latencies, errors, seconds, cpuUsed, clientCpu);
}

/**
 * A closed loop's result from its successful operations' latencies (sorted here), its errors, its
 * length, each server process's CPU seconds and the load generator's CPU usage over it.
 */
export function loadResultOf(
  latencies: number[],
  errors: number,
  seconds: number,
  cpuUsed: readonly number[],
  clientCpu: NodeJS.CpuUsage,
): LoadResult {
  latencies.sort((a, b) => a - b);
  const perOp = (micros: number) => (latencies.length === 0 ? 0 : micros / latencies.length);
  return {
    ops: latencies.length,
    errors,
    seconds,
    opsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMicrosPerOp: perOp(cpuUsed.reduce((sum, c) => sum + c, 0) * 1e6),
    busiestCpuMicrosPerOp: perOp(Math.max(0, ...cpuUsed) * 1e6),
    clientCpuMicrosPerOp: perOp(clientCpu.user + clientCpu.system),
  };
}

/** The median of `values` (0 for none). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** The value of `--name VALUE` in `args`, or `fallback`. */
export function option(args: readonly string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` every 200 ms until it returns a value (errors count as "not yet"), or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch {
      // Not up yet.
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A local 3-node Cairn cluster for a benchmark, with its leader found. */
export interface BenchCluster {
  readonly leaderUrl: string;
  /** host:port of the leader's Redis protocol server, when the cluster serves Redis. */
  readonly leaderRedisAddress: string | null;
  readonly pids: readonly number[];
  /** The supervisor of the node processes: add, kill and restart nodes (bench/scale.ts). */
  readonly supervisor: DevCluster;
  /** Stops every node and removes the data. */
  close(): Promise<void>;
}

/**
 * Starts 3 `cairn node` processes (the `cairn dev` layout) in a temp dir and waits for a leader.
 * `cairnBin` is the script that runs `cairn` (this tree's bin/cairn.js by default).
 */
export async function startBenchCluster(
  httpPort: number,
  peerPort: number,
  cairnBin = new URL("../bin/cairn.js", import.meta.url).pathname,
  redisPort?: number,
): Promise<BenchCluster> {
  const dir = await mkdtemp(join(tmpdir(), "cairn-bench-"));
  const cluster = await startDevCluster({
    nodes: 3,
    dir,
    httpPort,
    peerPort,
    cairnBin,
    ...(redisPort !== undefined ? { redisPort } : {}),
    print: () => {},
    // CAIRN_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" profiles the nodes of a benchmark.
    nodeFlags: (process.env["CAIRN_BENCH_NODE_FLAGS"] ?? "").split(" ").filter((f) => f !== ""),
  });

  const close = async () => {
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const leaderUrl = await waitFor("a Cairn leader", async () => {
      const status = (await (await fetch(`${cluster.nodes[0]?.httpUrl}/v1/cluster`)).json()) as {
        leader: { httpUrl: string | null } | null;
      };
      return status.leader?.httpUrl ?? undefined;
    });
    const leaderRedisAddress = cluster.nodes.find((n) => n.httpUrl === leaderUrl)?.redisAddress ?? null;
    return {
      leaderUrl,
      leaderRedisAddress,
      pids: cluster.nodes.map((n) => n.pid ?? 0),
      supervisor: cluster,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
