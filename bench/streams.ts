// `npm run bench:streams`: a 3-node Cairn cluster (default durability: fsync on a majority before
// every acknowledgement) under appends of 100-byte messages to one stream from 1, 16, 64 and 256
// concurrent HTTP keep-alive producers; then consumer-group throughput: consumers that fetch a batch
// and acknowledge it, each point on a fresh group over the same backlog.
// Options: --seconds N per point (default 5), --clients 1,16,64,256, --consumers 1,16, --batch 10,100.
import { Pool } from "undici";
import {
  cpuSecondsOf,
  type LoadResult,
  option as optionOf,
  runLoad,
  startBenchCluster,
  waitFor,
} from "./load.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => optionOf(args, name, fallback);
const seconds = Number(option("seconds", "5"));
const clientCounts = option("clients", "1,16,64,256").split(",").map(Number);
const consumerCounts = option("consumers", "1,16").split(",").map(Number);
const batches = option("batch", "10,100").split(",").map(Number);
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

const { leaderUrl, pids, close } = await startBenchCluster(29181, 29101);

const appendRows: { clients: number; result: LoadResult }[] = [];
const consumeRows: { consumers: number; batch: number; result: ConsumeResult }[] = [];
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
  for (const clients of clientCounts) {
    const result = await runLoad({
      url: leaderUrl,
      clients,
      seconds,
      serverPids: pids,
      next: () => ({ method: "POST", path: "/v1/streams/bench/messages", body: JSON.stringify({ payload }) }),
    });
    appendRows.push({ clients, result });
  }
  let groupNo = 0;
  for (const consumers of consumerCounts) {
    for (const batch of batches) {
      const group = `g${groupNo++}`;
      await post("/v1/streams/bench/groups", {
        group,
        startAt: "first",
        ackWaitMs: 60_000,
        maxAckPending: 10_000,
      });
      consumeRows.push({ consumers, batch, result: await consume(leaderUrl, group, consumers, batch, pids) });
    }
  }
} finally {
  await close();
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);
console.log(
  `${seconds} s per point, 3 nodes, fsync on a majority before every acknowledgement, requests to the leader\n`,
);
console.log("Appends of 100-byte messages to one stream:\n");
console.log("| producers | appends/s | p50 ms | p99 ms | server CPU µs/append | errors |");
console.log("| ---: | ---: | ---: | ---: | ---: | ---: |");
for (const { clients, result: r } of appendRows) {
  console.log(
    `| ${clients} | ${fmt(r.opsPerSecond)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.cpuMicrosPerOp)} | ${r.errors} |`,
  );
}
console.log("\nConsumer group, fetch a batch then ack it (each a replicated write):\n");
console.log("| consumers | batch | messages/s | fetch+ack rounds/s | server CPU µs/message | errors |");
console.log("| ---: | ---: | ---: | ---: | ---: | ---: |");
for (const { consumers, batch, result: r } of consumeRows) {
  console.log(
    `| ${consumers} | ${batch} | ${fmt(r.messagesPerSecond)} | ${fmt(r.roundsPerSecond)} | ${fmt(r.cpuMicrosPerMessage)} | ${r.errors} |`,
  );
}
