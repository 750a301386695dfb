// The streams benchmark: a 3-node Cairn cluster (default durability: fsync on a majority before
// every acknowledgement) under appends of 100-byte messages to one stream from 1, 16, 64 and 256
// concurrent HTTP keep-alive producers; then consumer-group throughput: consumers that fetch a batch
// and acknowledge it (two replicated writes per round), each point on a fresh group over the same
// backlog. Every point runs --rounds times and the tables show medians. `npm run bench:streams`
// runs only this; `npm run bench` runs it after the key-value benchmark.
// Options: --seconds N per point (default 4), --rounds N (default 2), --clients 1,16,64,256,
// --consumers 1,16, --batch 10,100.
import { loadavg } from "node:os";
import { Pool } from "undici";
import {
  cpuSecondsOf,
  type LoadResult,
  median,
  option as optionOf,
  runLoad,
  startBenchCluster,
  waitFor,
} from "./load.js";

const payload = "m".repeat(100);

interface ConsumeResult {
  readonly messagesPerSecond: number;
  readonly roundsPerSecond: number;
  readonly errors: number;
  readonly cpuMicrosPerMessage: number;
}

/** Consumers in closed loops: fetch up to `batch`, then ack what came; counts acknowledged messages. */
async function consume(
  url: string,
  group: string,
  consumers: number,
  batch: number,
  seconds: number,
  pids: readonly number[],
): Promise<ConsumeResult> {
  const pool = new Pool(url, { connections: consumers * 2, pipelining: 1 });
  const post = async (path: string, body: unknown) => {
    const response = await pool.request({
      method: "POST",
      path,
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(text);
    return JSON.parse(text) as { messages?: { seq: number }[] };
  };
  let messages = 0;
  let rounds = 0;
  let errors = 0;
  const cpuBefore = pids.reduce((s, pid) => s + cpuSecondsOf(pid), 0);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: consumers }, async (_, c) => {
      while (performance.now() < deadline) {
        try {
          const fetched = await post(`/v1/streams/bench/groups/${group}/fetch`, {
            consumer: `c${c}`,
            max: batch,
          });
          const seqs = (fetched.messages ?? []).map((m) => m.seq);
          if (seqs.length === 0) break;
          await post(`/v1/streams/bench/groups/${group}/ack`, { seqs });
          messages += seqs.length;
          rounds++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = pids.reduce((s, pid) => s + cpuSecondsOf(pid), 0);
  await pool.close();
  return {
    messagesPerSecond: messages / elapsed,
    roundsPerSecond: rounds / elapsed,
    errors,
    cpuMicrosPerMessage: messages === 0 ? 0 : ((cpuAfter - cpuBefore) * 1e6) / messages,
  };
}

/** Runs the streams benchmark and returns its report (markdown tables). */
export async function runStreamsBench(args: readonly string[]): Promise<string> {
  const option = (name: string, fallback: string) => optionOf(args, name, fallback);
  const seconds = Number(option("seconds", "4"));
  const rounds = Number(option("rounds", "2"));
  const clientCounts = option("clients", "1,16,64,256").split(",").map(Number);
  const consumerCounts = option("consumers", "1,16").split(",").map(Number);
  const batches = option("batch", "10,100").split(",").map(Number);

  const { leaderUrl, pids, close } = await startBenchCluster(29181, 29101);
  const loadBefore = loadavg()[0] ?? 0;
  const appends = new Map<number, LoadResult[]>();
  const consumes = new Map<string, ConsumeResult[]>();
  try {
    const post = (path: string, body: unknown) =>
      fetch(`${leaderUrl}${path}`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
    await waitFor("the stream", async () =>
      (await post("/v1/streams", { name: "bench" })).ok ? true : undefined,
    );
    const body = JSON.stringify({ payload });
    // Warm up (JIT, connection setup) before anything is measured.
    await runLoad({
      url: leaderUrl,
      clients: 16,
      seconds: 2,
      serverPids: pids,
      next: () => ({ method: "POST", path: "/v1/streams/bench/messages", body }),
    });
    for (let round = 0; round < rounds; round++) {
      for (const clients of clientCounts) {
        const result = await runLoad({
          url: leaderUrl,
          clients,
          seconds,
          serverPids: pids,
          next: () => ({ method: "POST", path: "/v1/streams/bench/messages", body }),
        });
        appends.set(clients, [...(appends.get(clients) ?? []), result]);
      }
    }
    let groupNo = 0;
    for (let round = 0; round < rounds; round++) {
      for (const consumers of consumerCounts) {
        for (const batch of batches) {
          const group = `g${groupNo++}`;
          await post("/v1/streams/bench/groups", {
            group,
            startAt: "first",
            ackWaitMs: 60_000,
            maxAckPending: 10_000,
          });
          const key = `${consumers} ${batch}`;
          const result = await consume(leaderUrl, group, consumers, batch, seconds, pids);
          consumes.set(key, [...(consumes.get(key) ?? []), result]);
        }
      }
    }
  } finally {
    await close();
  }

  const loadAfter = loadavg()[0] ?? 0;
  const fmt = (n: number, digits = 0) => n.toFixed(digits);
  const lines = [
    `${seconds} s per point, ${rounds} rounds, medians; 3 nodes, fsync on a majority before every ` +
      `acknowledgement, requests to the leader; load average ${fmt(loadBefore, 1)} before, ${fmt(loadAfter, 1)} after\n`,
    "Appends of 100-byte messages to one stream:\n",
    "| producers | appends/s | p50 ms | p99 ms | server CPU µs/append | busiest process µs/append | load generator µs/append | errors |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];

  for (const clients of clientCounts) {
    const runs = appends.get(clients) ?? [];
    lines.push(
      `| ${clients} | ${fmt(median(runs.map((r) => r.opsPerSecond)))} | ${fmt(median(runs.map((r) => r.p50Ms)), 2)} | ${fmt(median(runs.map((r) => r.p99Ms)), 2)} | ${fmt(median(runs.map((r) => r.cpuMicrosPerOp)))} | ${fmt(median(runs.map((r) => r.busiestCpuMicrosPerOp)))} | ${fmt(median(runs.map((r) => r.clientCpuMicrosPerOp)))} | ${runs.reduce((s, r) => s + r.errors, 0)} |`,
    );
  }
  lines.push("", "Consumer group, fetch a batch then ack it (each a replicated write):\n");
  lines.push("| consumers | batch | messages/s | fetch+ack rounds/s | server CPU µs/message | errors |");
  lines.push("| ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const consumers of consumerCounts) {
    for (const batch of batches) {
      const runs = consumes.get(`${consumers} ${batch}`) ?? [];
      lines.push(
        `| ${consumers} | ${batch} | ${fmt(median(runs.map((r) => r.messagesPerSecond)))} | ${fmt(median(runs.map((r) => r.roundsPerSecond)))} | ${fmt(median(runs.map((r) => r.cpuMicrosPerMessage)))} | ${runs.reduce((s, r) => s + r.errors, 0)} |`,
      );
    }
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runStreamsBench(process.argv.slice(2)));
}
