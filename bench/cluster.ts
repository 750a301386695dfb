// The key-value benchmark: a 3-node Cairn cluster (default durability: fsync on a majority before
// every acknowledgement) under puts and linearizable gets of 100-byte values from 1, 16, 64 and 256
// concurrent HTTP keep-alive clients; and, when the `etcd` binary is installed, a 3-member etcd on
// the same machine through its HTTP gateway with the same load generator. Both clusters run for the
// whole benchmark and the points alternate between them, round after round in a shuffled order, so
// a change in the machine's load (it is shared) hits both alike; the tables show medians over the
// rounds. Run alone with `node --import tsx bench/cluster.ts` (after `npm run build`); `npm run
// bench` runs it and then the streams benchmark.
// Options: --seconds N per point (default 4), --rounds N (default 3), --clients 1,16,64,256, --no-etcd.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Prng } from "../src/util/prng.js";
import {
  type LoadResult,
  median,
  option as optionOf,
  type RequestSpec,
  runLoad,
  sleep,
  startBenchCluster,
  waitFor,
} from "./load.js";

const keys = 1000;
const value = "v".repeat(100);
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** A system under test: where to send requests, which processes to charge, how to build requests. */
interface System {
  readonly name: "cairn" | "etcd";
  readonly url: string;
  readonly pids: readonly number[];
  readonly request: {
    readonly put: (key: string) => RequestSpec;
    readonly get: (key: string) => RequestSpec;
  };
  close(): Promise<void>;
}

async function startCairn(): Promise<System> {
  const { leaderUrl, pids, close } = await startBenchCluster(28081, 27001);
  for (let k = 0; k < keys; k++) {
    await fetch(`${leaderUrl}/v1/kv/key-${k}`, {
      method: "PUT",
      body: JSON.stringify({ value }),
      headers: { "content-type": "application/json" },
    });
  }
  return {
    name: "cairn",
    url: leaderUrl,
    pids,
    request: {
      put: (key) => ({ method: "PUT", path: `/v1/kv/${key}`, body: JSON.stringify({ value }) }),
      get: (key) => ({ method: "GET", path: `/v1/kv/${key}` }),
    },
    close,
  };
}

async function startEtcd(): Promise<System> {
  const dir = await mkdtemp(join(tmpdir(), "etcd-bench-"));
  const names = ["e1", "e2", "e3"];
  const peer = (i: number) => `http://127.0.0.1:${23800 + i}`;
  const client = (i: number) => `http://127.0.0.1:${23790 + i}`;
  const initial = names.map((n, i) => `${n}=${peer(i)}`).join(",");
  const children = names.map((name, i) =>
    spawn(
      "etcd",
      [
        "--name",
        name,
        "--data-dir",
        join(dir, name),
        "--listen-client-urls",
        client(i),
        "--advertise-client-urls",
        client(i),
        "--listen-peer-urls",
        peer(i),
        "--initial-advertise-peer-urls",
        peer(i),
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        "new",
        "--log-level",
        "error",
      ],
      { stdio: "ignore" },
    ),
  );
  const close = async () => {
    for (const c of children) c.kill("SIGKILL");
    await sleep(200);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const leaderUrl = await waitFor("an etcd leader", async () => {
      for (let i = 0; i < names.length; i++) {
        const s = (await (
          await fetch(`${client(i)}/v3/maintenance/status`, { method: "POST", body: "{}" })
        ).json()) as {
          leader?: string;
          header?: { member_id?: string };
        };
        if (s.leader !== undefined && s.leader === s.header?.member_id) return client(i);
      }
      return undefined;
    });
    for (let k = 0; k < keys; k++) {
      await fetch(`${leaderUrl}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: b64(`key-${k}`), value: b64(value) }),
      });
    }
    return {
      name: "etcd",
      url: leaderUrl,
      pids: children.map((c) => c.pid ?? 0),
      request: {
        put: (key) => ({
          method: "POST",
          path: "/v3/kv/put",
          body: JSON.stringify({ key: b64(key), value: b64(value) }),
        }),
        get: (key) => ({ method: "POST", path: "/v3/kv/range", body: JSON.stringify({ key: b64(key) }) }),
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** One measured point of one system, as medians over the rounds. */
interface Row extends Omit<LoadResult, "ops" | "seconds"> {
  readonly system: "cairn" | "etcd";
  readonly op: "put" | "get";
  readonly clients: number;
}

/** Runs the key-value benchmark and returns its report (markdown tables). */
export async function runClusterBench(args: readonly string[]): Promise<string> {
  const option = (name: string, fallback: string) => optionOf(args, name, fallback);
  const seconds = Number(option("seconds", "4"));
  const rounds = Number(option("rounds", "3"));
  const clientCounts = option("clients", "1,16,64,256").split(",").map(Number);
  const haveEtcd = !args.includes("--no-etcd") && spawnSync("etcd", ["--version"]).status === 0;
  const lines: string[] = [];
  if (!haveEtcd) lines.push("etcd not installed (Debian: apt-get install etcd-server): Cairn only\n");

  const systems: System[] = [await startCairn()];
  const loadBefore = loadavg()[0] ?? 0;
  try {
    if (haveEtcd) systems.push(await startEtcd());
    // Warm up each system (JIT, connection setup, caches) before anything is measured.
    for (const system of systems) {
      await runLoad({
        url: system.url,
        clients: 16,
        seconds: 2,
        serverPids: system.pids,
        next: (c, n) => system.request.put(`key-${(c * 7919 + n) % keys}`),
      });
    }
    const prng = new Prng(Date.now() % 2 ** 31);
    const samples = new Map<string, LoadResult[]>();
    for (const clients of clientCounts) {
      for (const op of ["put", "get"] as const) {
        for (let round = 0; round < rounds; round++) {
          const order = prng.below(2) === 0 ? systems : [...systems].reverse();
          for (const system of order) {
            const result = await runLoad({
              url: system.url,
              clients,
              seconds,
              serverPids: system.pids,
              next: (c, n) => system.request[op](`key-${(c * 7919 + n) % keys}`),
            });
            const key = `${system.name} ${op} ${clients}`;
            samples.set(key, [...(samples.get(key) ?? []), result]);
          }
        }
      }
    }
    const rows: Row[] = [];
    for (const clients of clientCounts) {
      for (const op of ["put", "get"] as const) {
        for (const system of systems) {
          const runs = samples.get(`${system.name} ${op} ${clients}`) ?? [];
          rows.push({
            system: system.name,
            op,
            clients,
            opsPerSecond: median(runs.map((r) => r.opsPerSecond)),
            p50Ms: median(runs.map((r) => r.p50Ms)),
            p99Ms: median(runs.map((r) => r.p99Ms)),
            cpuMicrosPerOp: median(runs.map((r) => r.cpuMicrosPerOp)),
            busiestCpuMicrosPerOp: median(runs.map((r) => r.busiestCpuMicrosPerOp)),
            clientCpuMicrosPerOp: median(runs.map((r) => r.clientCpuMicrosPerOp)),
            errors: runs.reduce((s, r) => s + r.errors, 0),
          });
        }
      }
    }
    const loadAfter = loadavg()[0] ?? 0;
    const fmt = (n: number, digits = 0) => n.toFixed(digits);
    lines.push(
      `${seconds} s per point, ${rounds} rounds alternating the systems, medians; 100-byte values, ${keys} keys, ` +
        `requests to the leader over HTTP keep-alive; load average ${fmt(loadBefore, 1)} before, ${fmt(loadAfter, 1)} after\n`,
    );
    lines.push(
      "| system | op | clients | ops/s | p50 ms | p99 ms | server CPU µs/op | busiest process µs/op | load generator µs/op | errors |",
    );
    lines.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const system of systems) {
      for (const r of rows.filter((row) => row.system === system.name)) {
        lines.push(
          `| ${r.system} | ${r.op} | ${r.clients} | ${fmt(r.opsPerSecond)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.cpuMicrosPerOp)} | ${fmt(r.busiestCpuMicrosPerOp)} | ${fmt(r.clientCpuMicrosPerOp)} | ${r.errors} |`,
        );
      }
    }
    if (haveEtcd) {
      lines.push("");
      lines.push("| op | clients | cairn/etcd ops/s | cairn p99 / etcd p99 | cairn p50 / etcd p50 |");
      lines.push("| --- | ---: | ---: | ---: | ---: |");
      for (const r of rows.filter((row) => row.system === "cairn")) {
        const e = rows.find((row) => row.system === "etcd" && row.op === r.op && row.clients === r.clients);
        if (e === undefined) continue;
        lines.push(
          `| ${r.op} | ${r.clients} | ${fmt(r.opsPerSecond / e.opsPerSecond, 2)} | ${fmt(r.p99Ms / e.p99Ms, 2)} | ${fmt(r.p50Ms / e.p50Ms, 2)} |`,
        );
      }
    }
    return lines.join("\n");
  } finally {
    for (const system of systems) await system.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runClusterBench(process.argv.slice(2)));
}
