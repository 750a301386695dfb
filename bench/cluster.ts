// `npm run bench`: a 3-node Cairn cluster (default durability: fsync before every acknowledgement)
// under puts and linearizable gets of 100-byte values from 1, 16, 64 and 256 concurrent HTTP
// keep-alive clients; and, when the `etcd` binary is installed, a 3-member etcd on the same machine
// through its HTTP gateway with the same load generator, in the same run, with the ratios.
// Options: --seconds N per point (default 5), --clients 1,16,64,256, --no-etcd.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type LoadResult,
  option as optionOf,
  type RequestSpec,
  runLoad,
  sleep,
  startBenchCluster,
  waitFor,
} from "./load.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => optionOf(args, name, fallback);
const seconds = Number(option("seconds", "5"));
const clientCounts = option("clients", "1,16,64,256").split(",").map(Number);
const keys = 1000;
const value = "v".repeat(100);
const b64 = (s: string) => Buffer.from(s).toString("base64");

interface Row {
  readonly system: string;
  readonly op: "put" | "get";
  readonly clients: number;
  readonly result: LoadResult;
}

/** Runs puts then gets at every client count against one system, adding a row per point. */
async function runPoints(
  rows: Row[],
  system: string,
  url: string,
  serverPids: readonly number[],
  requests: { readonly put: (key: string) => RequestSpec; readonly get: (key: string) => RequestSpec },
): Promise<void> {
  for (const clients of clientCounts) {
    for (const op of ["put", "get"] as const) {
      const result = await runLoad({
        url,
        clients,
        seconds,
        serverPids,
        next: (c, n) => requests[op](`key-${(c * 7919 + n) % keys}`),
      });
      rows.push({ system, op, clients, result });
    }
  }
}

async function benchCairn(rows: Row[]): Promise<void> {
  const { leaderUrl, pids, close } = await startBenchCluster(28081, 27001);
  try {
    for (let k = 0; k < keys; k++) {
      await fetch(`${leaderUrl}/v1/kv/key-${k}`, {
        method: "PUT",
        body: JSON.stringify({ value }),
        headers: { "content-type": "application/json" },
      });
    }
    await runPoints(rows, "cairn", leaderUrl, pids, {
      put: (key) => ({ method: "PUT", path: `/v1/kv/${key}`, body: JSON.stringify({ value }) }),
      get: (key) => ({ method: "GET", path: `/v1/kv/${key}` }),
    });
  } finally {
    await close();
  }
}

async function benchEtcd(rows: Row[]): Promise<void> {
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
    const pids = children.map((c) => c.pid ?? 0);
    for (let k = 0; k < keys; k++) {
      await fetch(`${leaderUrl}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: b64(`key-${k}`), value: b64(value) }),
      });
    }
    await runPoints(rows, "etcd", leaderUrl, pids, {
      put: (key) => ({
        method: "POST",
        path: "/v3/kv/put",
        body: JSON.stringify({ key: b64(key), value: b64(value) }),
      }),
      get: (key) => ({ method: "POST", path: "/v3/kv/range", body: JSON.stringify({ key: b64(key) }) }),
    });
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await sleep(200);
    await rm(dir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
await benchCairn(rows);
const haveEtcd = !args.includes("--no-etcd") && spawnSync("etcd", ["--version"]).status === 0;
if (haveEtcd) await benchEtcd(rows);
else console.log("etcd not installed (Debian: apt-get install etcd-server): Cairn only\n");

const fmt = (n: number, digits = 0) => n.toFixed(digits);
console.log(
  `${seconds} s per point, 100-byte values, ${keys} keys, requests to the leader over HTTP keep-alive\n`,
);
console.log("| system | op | clients | ops/s | p50 ms | p99 ms | server CPU µs/op | errors |");
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  const x = r.result;
  console.log(
    `| ${r.system} | ${r.op} | ${r.clients} | ${fmt(x.opsPerSecond)} | ${fmt(x.p50Ms, 2)} | ${fmt(x.p99Ms, 2)} | ${fmt(x.cpuMicrosPerOp)} | ${x.errors} |`,
  );
}
if (haveEtcd) {
  console.log("\n| op | clients | cairn/etcd ops/s | cairn p99 / etcd p99 |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const r of rows.filter((row) => row.system === "cairn")) {
    const e = rows.find((row) => row.system === "etcd" && row.op === r.op && row.clients === r.clients);
    if (e === undefined) continue;
    console.log(
      `| ${r.op} | ${r.clients} | ${fmt(r.result.opsPerSecond / e.result.opsPerSecond, 2)} | ${fmt(r.result.p99Ms / e.result.p99Ms, 2)} |`,
    );
  }
}
