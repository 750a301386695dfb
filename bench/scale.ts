// The scale benchmark (`npm run bench:scale`): fills a 3-node Cairn cluster (real `cairn node`
// processes of the compiled build, the `cairn dev` layout) with --keys keys of --value-bytes bytes
// (MSET through the leader's Redis port, several connections with several commands in flight) and
// --messages stream messages of the same size (batch appends, `POST /v1/streams/scale/messages`
// with an array, over HTTP keep-alive), and reports what must stay flat as the data grows:
// - put and append throughput in a fixed measuring window on the empty cluster and again on the
//   full one (closed-loop HTTP clients, bench/load.ts), and the fill rates at its start and end;
// - each node's RSS, and the sizes of its data directory's parts (WAL, snapshots, lmdb state);
// - the snapshots each node captured during the fill and the bytes they wrote (its /metrics);
// - the time to bring a NEW node up to date (the supervisor's `cluster add` of a 4th node, which
//   joins as a learner and gets a snapshot streamed, until its applied index reaches the leader's
//   commit index at the time of the add), and the snapshot's size;
// - the time for a follower killed with SIGKILL to restart and answer /health/ready again.
// Every loop is bounded in count and in time; every node is stopped by its pid (the supervisor).
// Options: --keys N (default 1,000,000), --messages N (default 5,000,000), --value-bytes N (default
// 100), --quick (100,000 keys and 500,000 messages), --window-seconds N (default 5), --clients N
// (window clients, default 64), --fill-minutes N (the fill's time bound, default 20).
// CAIRN_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" profiles the nodes (bench/load.ts).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Pool } from "undici";
import type { ClusterStatus } from "../src/api/index.js";
import {
  type BenchCluster,
  type LoadResult,
  option as optionOf,
  type RequestSpec,
  runLoad,
  startBenchCluster,
  waitFor,
} from "./load.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => optionOf(args, name, fallback);
const quick = args.includes("--quick");
const keys = Number(option("keys", quick ? "100000" : "1000000"));
const messages = Number(option("messages", quick ? "500000" : "5000000"));
const valueBytes = Number(option("value-bytes", "100"));
const windowSeconds = Number(option("window-seconds", "5"));
const windowClients = Number(option("clients", "64"));
const fillMs = Number(option("fill-minutes", "20")) * 60_000;
for (const [name, n] of Object.entries({ keys, messages, valueBytes, windowSeconds, windowClients })) {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}
/** Keys per MSET, MSETs in flight per connection, connections. */
const msetPairs = 100;
const msetDepth = 4;
const msetConnections = 4;
/** Messages per batch append (the API's limit is 1,000), and batch appends in flight. */
const appendBatch = 500;
const appendConcurrency = 8;
/** How much of a fill its start and end rates cover. */
const fillEdge = 0.1;

// Values: a fixed random-looking string (not one repeated byte, which would flatter any
// compression), with the key's number in front so no two values are equal.
const noise = Array.from({ length: valueBytes }, (_, i) => String.fromCharCode(97 + ((i * 7919) % 26))).join(
  "",
);
const valueFor = (n: number) => `${n}:${noise}`.slice(0, valueBytes);
const keyOf = (n: number) => `key-${n}`;
const payload = noise;

const fmt = (n: number, digits = 0) => n.toFixed(digits);
const mib = (bytes: number) => fmt(bytes / 1024 / 1024, 1);
const elapsedSince = (t: number) => (performance.now() - t) / 1000;

/**
 * Resident memory of a process in bytes, from /proc: anonymous (the heap and other private memory)
 * and file-backed (mostly the pages of lmdb's memory-mapped file that were touched, which the
 * kernel can drop at will). Zeros when it is gone.
 */
function rssOf(pid: number): { anon: number; file: number } {
  try {
    const lines = readFileSync(`/proc/${pid}/status`, "utf8").split("\n");
    const kib = (field: string) =>
      Number(lines.find((l) => l.startsWith(`${field}:`))?.split(/\s+/)[1] ?? 0) * 1024;
    return { anon: kib("RssAnon"), file: kib("RssFile") };
  } catch {
    return { anon: 0, file: 0 };
  }
}

/** Bytes of every file under `path` (0 when absent). */
function sizeOf(path: string): number {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.size;
  let total = 0;
  for (const name of readdirSync(path)) total += sizeOf(join(path, name));
  return total;
}

/** The newest file under `path` (recursively) and its size, or undefined when there is none. */
function newestFile(path: string): { path: string; bytes: number; mtimeMs: number } | undefined {
  let names: string[] = [];
  try {
    names = readdirSync(path);
  } catch {
    return undefined;
  }
  let newest: { path: string; bytes: number; mtimeMs: number } | undefined;
  for (const name of names) {
    // A capture's file being written (`.tmp`) is no snapshot yet, and may be gone before the stat.
    if (name.includes(".tmp")) continue;
    const full = join(path, name);
    const stat = statSync(full, { throwIfNoEntry: false });
    if (stat === undefined) continue;
    const found = stat.isDirectory()
      ? newestFile(full)
      : { path: full, bytes: stat.size, mtimeMs: stat.mtimeMs };
    if (found !== undefined && (newest === undefined || found.mtimeMs > newest.mtimeMs)) newest = found;
  }
  return newest;
}

/** A data directory's size by its top-level entries (wal, snapshots, the lmdb state, ...). */
function partsOf(dataDir: string): Map<string, number> {
  const parts = new Map<string, number>();
  let names: string[] = [];
  try {
    names = readdirSync(dataDir);
  } catch {
    return parts;
  }
  for (const name of names) parts.set(name, sizeOf(join(dataDir, name)));
  return parts;
}

async function statusOf(url: string): Promise<ClusterStatus> {
  const response = await fetch(`${url}/v1/cluster`, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url}/v1/cluster: ${response.status}`);
  return (await response.json()) as ClusterStatus;
}

/** The current leader's URL and status, asked of every running node in turn. */
async function leaderStatus(cluster: BenchCluster): Promise<{ url: string; status: ClusterStatus }> {
  return waitFor("a leader", async () => {
    for (const node of cluster.supervisor.nodes) {
      const s = await statusOf(node.httpUrl).catch(() => undefined);
      if (s?.self.role === "leader") return { url: node.httpUrl, status: s };
    }
    return undefined;
  });
}

/** Fill rates: the whole, and over its first and last `fillEdge` share of the items. */
interface FillResult {
  readonly items: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly startPerSecond: number;
  readonly endPerSecond: number;
}

/**
 * Runs `workers` loops that take the next `step` items from a shared counter and hand them to
 * `send`, until `total` items are written or the fill's time bound passes; a failed send is retried
 * (the same items, so the data is whole), up to `errorsMax` failures in all.
 */
async function fill(
  what: string,
  total: number,
  step: number,
  workers: number,
  send: (first: number, count: number) => Promise<void>,
): Promise<FillResult> {
  const errorsMax = 100;
  let next = 0;
  let written = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + fillMs;
  let edgeStartMs = 0;
  let edgeEndMs = 0;
  const endFrom = Math.floor(total * (1 - fillEdge));
  let lastReport = started;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < total) {
        if (performance.now() > deadline)
          throw new Error(`${what}: the fill took longer than --fill-minutes`);
        const first = next;
        const count = Math.min(step, total - first);
        next += count;
        for (;;) {
          try {
            await send(first, count);
            break;
          } catch (error) {
            if (++errors > errorsMax)
              throw new Error(`${what}: ${errorsMax} failed writes`, { cause: error });
          }
        }
        const before = written;
        written += count;
        const now = performance.now();
        if (before < total * fillEdge && written >= total * fillEdge) edgeStartMs = now - started;
        if (before < endFrom && written >= endFrom) edgeEndMs = now;
        if (now - lastReport > 30_000) {
          lastReport = now;
          const load = loadavg()
            .map((x) => fmt(x, 1))
            .join(" ");
          console.error(`${what}: ${written}/${total} after ${fmt((now - started) / 1000)} s (load ${load})`);
        }
      }
    }),
  );
  const seconds = elapsedSince(started);
  const endSeconds = (performance.now() - edgeEndMs) / 1000;
  return {
    items: written,
    seconds,
    perSecond: written / seconds,
    startPerSecond: (total * fillEdge) / (edgeStartMs / 1000),
    endPerSecond: (total - endFrom) / endSeconds,
  };
}

/** Writes keys 0..keys-1 with MSET through the leader's Redis port. */
async function fillKeys(redisAddress: string): Promise<FillResult> {
  const [host, port] = redisAddress.split(":");
  const connections = Array.from(
    { length: msetConnections },
    () =>
      new Redis({
        host: host ?? "127.0.0.1",
        port: Number(port),
        maxRetriesPerRequest: 0,
        lazyConnect: false,
      }),
  );
  try {
    let turn = 0;
    return await fill("keys", keys, msetPairs, msetConnections * msetDepth, async (first, count) => {
      const pairs: string[] = [];
      for (let k = first; k < first + count; k++) pairs.push(keyOf(k), valueFor(k));
      const connection = connections[turn++ % connections.length];
      if (connection === undefined) throw new Error("no connection");
      const reply = await connection.mset(...pairs);
      if (reply !== "OK") throw new Error(`MSET answered ${reply}`);
    });
  } finally {
    for (const c of connections) c.disconnect();
  }
}

/** Appends `messages` messages to the stream `scale` with batch appends over HTTP. */
async function fillMessages(leaderUrl: string): Promise<FillResult> {
  const pool = new Pool(leaderUrl, { connections: appendConcurrency, pipelining: 1 });
  const bodies = new Map<number, string>();
  const bodyOf = (count: number) => {
    let body = bodies.get(count);
    if (body === undefined) {
      body = JSON.stringify(Array.from({ length: count }, () => ({ payload })));
      bodies.set(count, body);
    }
    return body;
  };
  try {
    return await fill("messages", messages, appendBatch, appendConcurrency, async (_, count) => {
      const response = await pool.request({
        method: "POST",
        path: "/v1/streams/scale/messages",
        body: bodyOf(count),
        headers: { "content-type": "application/json" },
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`batch append: ${response.statusCode} ${text}`);
    });
  } finally {
    await pool.close();
  }
}

/** The measuring window's operations. */
const windowOps = {
  put: (c: number, n: number): RequestSpec => {
    const k = (c * 7919 + n * 104_729) % keys;
    return { method: "PUT", path: `/v1/kv/${keyOf(k)}`, body: JSON.stringify({ value: valueFor(k) }) };
  },
  append: (): RequestSpec => ({
    method: "POST",
    path: "/v1/streams/scale/messages",
    body: JSON.stringify({ payload }),
  }),
} as const;

/** One measuring window per operation against the current leader. */
async function measureWindow(cluster: BenchCluster): Promise<Record<keyof typeof windowOps, LoadResult>> {
  const { url } = await leaderStatus(cluster);
  const pids = cluster.supervisor.nodes.flatMap((n) => (n.pid === null ? [] : [n.pid]));
  const run = (next: (c: number, n: number) => RequestSpec) =>
    runLoad({ url, clients: windowClients, seconds: windowSeconds, serverPids: pids, next });
  return { put: await run(windowOps.put), append: await run(windowOps.append) };
}

/** Every node's RSS and data directory parts, by node name. */
function nodeFootprints(
  cluster: BenchCluster,
): { name: string; rss: { anon: number; file: number }; parts: Map<string, number> }[] {
  return cluster.supervisor.nodes.map((n) => ({
    name: n.name,
    rss: n.pid === null ? { anon: 0, file: 0 } : rssOf(n.pid),
    parts: partsOf(n.dataDir),
  }));
}

/** A counter's value in a node's /metrics text (0 when absent). */
function counterIn(metrics: string, name: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** Snapshots each node captured from its own state so far, and the bytes they wrote (from /metrics). */
async function snapshotCounts(
  cluster: BenchCluster,
): Promise<{ name: string; taken: number; bytes: number }[]> {
  return Promise.all(
    cluster.supervisor.nodes.map(async (n) => {
      const text = await (
        await fetch(`${n.httpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })
      ).text();
      return {
        name: n.name,
        taken: counterIn(text, "cairn_snapshots_taken_total"),
        bytes: counterIn(text, "cairn_snapshot_bytes_written_total"),
      };
    }),
  );
}

/** Adds a 4th node and times it until its applied index reaches the leader's commit index at the add. */
async function timeNewNode(
  cluster: BenchCluster,
): Promise<{ seconds: number; name: string; target: number }> {
  const { status } = await leaderStatus(cluster);
  const target = status.commitIndex;
  const started = performance.now();
  const added = await cluster.supervisor.add();
  const url = cluster.supervisor.nodes.find((n) => n.name === added.name)?.httpUrl;
  if (url === undefined) throw new Error(`the added node ${added.name} has no URL`);
  await waitFor(
    `${added.name} to catch up to index ${target}`,
    async () => ((await statusOf(url)).appliedIndex >= target ? true : undefined),
    10 * 60_000,
  );
  return { seconds: elapsedSince(started), name: added.name, target };
}

/** Kills a follower with SIGKILL, starts it again and times it until /health/ready answers 200. */
async function timeRestart(cluster: BenchCluster): Promise<{ seconds: number; name: string }> {
  const { status } = await leaderStatus(cluster);
  const follower = cluster.supervisor.nodes.find(
    (n) => n.id !== status.self.id && status.members.some((m) => m.id === n.id && m.voter),
  );
  if (follower === undefined) throw new Error("no follower to restart");
  await cluster.supervisor.kill(follower.name);
  const started = performance.now();
  await cluster.supervisor.start(follower.name);
  await waitFor(
    `${follower.name} to be ready again`,
    async () =>
      (await fetch(`${follower.httpUrl}/health/ready`, { signal: AbortSignal.timeout(5_000) })).status === 200
        ? true
        : undefined,
    10 * 60_000,
  );
  return { seconds: elapsedSince(started), name: follower.name };
}

async function main(): Promise<void> {
  const load = () =>
    loadavg()
      .map((x) => fmt(x, 1))
      .join(" ");
  const report: string[] = [
    `keys ${keys} of ${valueBytes} B (MSET, ${msetPairs} keys each), messages ${messages} of ${valueBytes} B ` +
      `(batch appends of ${appendBatch}); windows of ${windowSeconds} s with ${windowClients} HTTP clients; ` +
      `load average at the start ${load()}`,
  ];
  const cluster = await startBenchCluster(29581, 29501, undefined, 29561);
  try {
    const { url: leaderUrl } = await leaderStatus(cluster);
    const redisAddress = cluster.supervisor.nodes.find((n) => n.httpUrl === leaderUrl)?.redisAddress;
    if (redisAddress === null || redisAddress === undefined)
      throw new Error("the leader serves no Redis port");
    await waitFor("the stream", async () => {
      const response = await fetch(`${leaderUrl}/v1/streams`, {
        method: "POST",
        body: JSON.stringify({ name: "scale" }),
        headers: { "content-type": "application/json" },
      });
      return response.ok ? true : undefined;
    });
    // Warm up (JIT, connections) before the first window.
    await runLoad({
      url: leaderUrl,
      clients: 16,
      seconds: 2,
      serverPids: cluster.pids,
      next: windowOps.put,
    });
    console.error(`window on the empty cluster (load ${load()})`);
    const emptyWindow = await measureWindow(cluster);
    const emptyFootprints = nodeFootprints(cluster);
    console.error(`filling ${keys} keys (load ${load()})`);
    const keyFill = await fillKeys(redisAddress);
    console.error(`filling ${messages} messages (load ${load()})`);
    const messageFill = await fillMessages(leaderUrl);
    const fillSnapshots = await snapshotCounts(cluster);
    console.error(`window on the full cluster (load ${load()})`);
    const fullWindow = await measureWindow(cluster);
    const firstWindowSnapshots = await snapshotCounts(cluster);
    // Once more at once: whether the first full window met the end of the fill's last captures.
    console.error(`window on the full cluster, second (load ${load()})`);
    const secondWindow = await measureWindow(cluster);
    const secondWindowSnapshots = await snapshotCounts(cluster);
    const fullFootprints = nodeFootprints(cluster);
    const loadAfterFill = load();
    console.error("adding a node");
    const newNode = await timeNewNode(cluster);
    const afterAdd = nodeFootprints(cluster);
    console.error("restarting a follower");
    const restart = await timeRestart(cluster);
    const afterRestart = nodeFootprints(cluster);
    // Again once the fill's last snapshots are long done (the first full window may overlap them).
    console.error(`window on the full cluster again (load ${load()})`);
    const laterWindow = await measureWindow(cluster);
    const { status } = await leaderStatus(cluster);

    report.push(
      `load average after the fill ${loadAfterFill}, at the end ${load()}; leader commit index ${status.commitIndex}, snapshot index ${status.snapshotIndex}\n`,
      "| window | op | ops/s | p50 ms | p99 ms | server CPU µs/op | errors |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const [name, w] of [
      ["empty", emptyWindow],
      ["full", fullWindow],
      ["full, second", secondWindow],
      ["full, after the add and the restart (4 nodes)", laterWindow],
    ] as const) {
      for (const op of ["put", "append"] as const) {
        const r = w[op];
        report.push(
          `| ${name} | ${op} | ${fmt(r.opsPerSecond)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.cpuMicrosPerOp)} | ${r.errors} |`,
        );
      }
    }
    const drop = (op: "put" | "append") => fullWindow[op].opsPerSecond / emptyWindow[op].opsPerSecond;
    report.push(
      "",
      `full / empty: put ${fmt(drop("put"), 2)}, append ${fmt(drop("append"), 2)} (goal: >= 0.80 each); ` +
        `second full / empty: put ${fmt(secondWindow.put.opsPerSecond / emptyWindow.put.opsPerSecond, 2)}, ` +
        `append ${fmt(secondWindow.append.opsPerSecond / emptyWindow.append.opsPerSecond, 2)}; ` +
        `later / empty: put ${fmt(laterWindow.put.opsPerSecond / emptyWindow.put.opsPerSecond, 2)}, ` +
        `append ${fmt(laterWindow.append.opsPerSecond / emptyWindow.append.opsPerSecond, 2)}\n`,
      "| fill | items | seconds | items/s | first 10% items/s | last 10% items/s | last / first |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const [name, f] of [
      ["keys (MSET)", keyFill],
      ["messages (batch append)", messageFill],
    ] as const) {
      report.push(
        `| ${name} | ${f.items} | ${fmt(f.seconds, 1)} | ${fmt(f.perSecond)} | ${fmt(f.startPerSecond)} | ${fmt(f.endPerSecond)} | ${fmt(f.endPerSecond / f.startPerSecond, 2)} |`,
      );
    }
    const partNames = [
      ...new Set([...fullFootprints, ...afterAdd, ...afterRestart].flatMap((f) => [...f.parts.keys()])),
    ].sort();
    report.push(
      "",
      `| node | when | RSS anon MiB | RSS file MiB | ${partNames.map((p) => `${p} MiB`).join(" | ")} | data total MiB |`,
      `| --- | --- | ---: | ---: | ${partNames.map(() => "---:").join(" | ")} | ---: |`,
    );
    for (const [when, footprints] of [
      ["empty", emptyFootprints],
      ["full", fullFootprints],
      ["after the add", afterAdd],
      ["after the restart", afterRestart],
    ] as const) {
      for (const f of footprints) {
        const total = [...f.parts.values()].reduce((s, b) => s + b, 0);
        report.push(
          `| ${f.name} | ${when} | ${mib(f.rss.anon)} | ${mib(f.rss.file)} | ${partNames.map((p) => mib(f.parts.get(p) ?? 0)).join(" | ")} | ${mib(total)} |`,
        );
      }
    }
    report.push(
      "",
      `snapshots captured during the fill, per node (cairn_snapshots_taken_total, MiB written): ${fillSnapshots
        .map((c) => `${c.name} ${c.taken} (${mib(c.bytes)})`)
        .join(", ")}; ` +
        `after the first full window: ${firstWindowSnapshots.map((c) => `${c.name} ${c.taken}`).join(", ")}; ` +
        `after the second: ${secondWindowSnapshots.map((c) => `${c.name} ${c.taken}`).join(", ")}`,
    );
    const leaderDir = cluster.supervisor.nodes.find((n) => n.id === status.self.id)?.dataDir ?? "";
    const snapshot = newestFile(join(leaderDir, "snapshots"));
    report.push(
      "",
      snapshot === undefined
        ? "no snapshot file on the leader"
        : `the leader's newest snapshot file: ${mib(snapshot.bytes)} MiB (${snapshot.path.slice(leaderDir.length + 1)})`,
    );
    const added = afterAdd.find((f) => f.name === newNode.name);
    const addedBytes = [...(added?.parts.values() ?? [])].reduce((s, b) => s + b, 0);
    report.push(
      `new node ${newNode.name}: caught up to index ${newNode.target} in ${fmt(newNode.seconds, 1)} s from \`add\` ` +
        `(its data directory then: ${mib(addedBytes)} MiB)`,
      `restart of follower ${restart.name} after SIGKILL: ready (/health/ready 200) ${fmt(restart.seconds, 1)} s after its start`,
    );
    console.log(report.join("\n"));
  } finally {
    await cluster.close();
  }
}

await main();
