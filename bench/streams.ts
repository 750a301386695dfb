// The streams benchmark: a 3-node Cairn cluster (default durability: fsync on a majority before
// every acknowledgement) under appends of 100-byte messages to one stream from 1, 16, 64 and 256
// concurrent HTTP keep-alive producers; then consumer-group throughput: consumers that fetch a batch
// and acknowledge it with their next fetch (one replicated write per round), each point on a fresh
// group over the same backlog. Every point runs --rounds times and the tables show medians.
// `npm run bench:streams` runs only this; `npm run bench` runs it after the key-value benchmark.
// With nats-server installed, NATS JetStream (3 nodes, an R3 file stream) runs every point beside
// Cairn in the same run, alternating which goes first (bench/jetstream.ts).
// Options: --seconds N per point (default 4), --rounds N (default 2), --clients 1,16,64,256,
// --consumers 1,16, --batch 10,100 (consumer fetch sizes), --append-batch N (messages per batch
// append, default 100; 1 skips batches), --ack ride|separate|ride,separate (how Cairn's consumers
// acknowledge: with the next fetch, default, or with a request of their own; two modes also print
// their paired comparison), --no-jetstream.
import { loadavg } from "node:os";
import { Pool } from "undici";
import { type ConsumeResult, haveNatsServer, type JetStreamCluster, startJetStream } from "./jetstream.js";
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

/**
 * How a Cairn consumer acknowledges: "ride" sends a batch's sequences with the next fetch (`ack` in
 * the fetch body: one replicated entry per round), "separate" posts them to .../ack before the next
 * fetch (two entries per round, as before fetch could carry acks).
 */
type AckMode = "ride" | "separate";

/** Consumers in closed loops: fetch up to `batch`, then ack what came; counts acknowledged messages. */
async function consume(
  url: string,
  group: string,
  consumers: number,
  batch: number,
  seconds: number,
  pids: readonly number[],
  mode: AckMode,
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
      const ack = async (seqs: number[]) => {
        await post(`/v1/streams/bench/groups/${group}/ack`, { seqs });
        messages += seqs.length;
        rounds++;
      };
      // With "ride", the sequences fetched last round, acknowledged by the next fetch.
      let held: number[] = [];
      while (performance.now() < deadline) {
        try {
          const fetched = await post(`/v1/streams/bench/groups/${group}/fetch`, {
            consumer: `c${c}`,
            max: batch,
            ...(held.length > 0 ? { ack: held } : {}),
          });
          messages += held.length;
          if (held.length > 0) rounds++;
          held = [];
          const seqs = (fetched.messages ?? []).map((m) => m.seq);
          if (seqs.length === 0) break;
          if (mode === "ride") held = seqs;
          else await ack(seqs);
        } catch {
          errors++;
        }
      }
      if (held.length > 0) await ack(held).catch(() => errors++);
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

/** One system's runs of one point, and the paired ratios of Cairn to JetStream per round. */
interface PointRuns<R> {
  readonly cairn: R[];
  readonly jetstream: R[];
}

/** Runs both, Cairn's first in even rounds, so both meet the machine's load alike. */
async function alternately(round: number, a: () => Promise<void>, b: () => Promise<void>): Promise<void> {
  for (const run of round % 2 === 0 ? [a, b] : [b, a]) await run();
}

/** Runs the streams benchmark and returns its report (markdown tables). */
export async function runStreamsBench(args: readonly string[]): Promise<string> {
  const option = (name: string, fallback: string) => optionOf(args, name, fallback);
  const seconds = Number(option("seconds", "4"));
  const rounds = Number(option("rounds", "2"));
  const clientCounts = option("clients", "1,16,64,256").split(",").map(Number);
  const consumerCounts = option("consumers", "1,16").split(",").map(Number);
  const batches = option("batch", "10,100").split(",").map(Number);
  const appendBatch = Number(option("append-batch", "100"));
  const ackModes = option("ack", "ride").split(",") as AckMode[];
  if (ackModes.some((m) => m !== "ride" && m !== "separate")) throw new Error("--ack takes ride,separate");
  const withJetStream = !args.includes("--no-jetstream") && haveNatsServer();

  const cairn = await startBenchCluster(29181, 29101);
  const { leaderUrl, pids } = cairn;
  let jetstream: JetStreamCluster | undefined;
  const loadBefore = loadavg()[0] ?? 0;
  /** Appends by "producers batch" (batch 1: single messages): messages/s is ops/s times batch. */
  const appends = new Map<string, PointRuns<LoadResult>>();
  const consumes = new Map<string, PointRuns<ConsumeResult>>();
  /** Cairn consumer runs by "consumers batch mode", for the comparison of ack modes. */
  const consumesByMode = new Map<string, ConsumeResult[]>();
  const record = <R>(map: Map<string, PointRuns<R>>, key: string, system: keyof PointRuns<R>, r: R) => {
    const runs = map.get(key) ?? { cairn: [], jetstream: [] };
    runs[system].push(r);
    map.set(key, runs);
  };
  try {
    if (withJetStream) jetstream = await startJetStream(29222);
    const post = (path: string, body: unknown) =>
      fetch(`${leaderUrl}${path}`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
    await waitFor("the stream", async () =>
      (await post("/v1/streams", { name: "bench" })).ok ? true : undefined,
    );
    const bodyOf = (batch: number) =>
      batch === 1
        ? JSON.stringify({ payload })
        : JSON.stringify(Array.from({ length: batch }, () => ({ payload })));
    const cairnAppends = (clients: number, batch: number, secs: number) => {
      const body = bodyOf(batch);
      return runLoad({
        url: leaderUrl,
        clients,
        seconds: secs,
        serverPids: pids,
        next: () => ({ method: "POST", path: "/v1/streams/bench/messages", body }),
      });
    };
    const payloadBytes = new TextEncoder().encode(payload);
    // Warm up (JIT, connection setup) before anything is measured.
    await cairnAppends(16, 1, 2);
    await jetstream?.publish(16, 1, 2, payloadBytes);
    const appendBatches = appendBatch > 1 ? [1, appendBatch] : [1];
    for (let round = 0; round < rounds; round++) {
      for (const batch of appendBatches) {
        for (const clients of clientCounts) {
          const key = `${clients} ${batch}`;
          const runCairn = async () =>
            record(appends, key, "cairn", await cairnAppends(clients, batch, seconds));
          const runJetStream = async () => {
            if (jetstream !== undefined)
              record(
                appends,
                key,
                "jetstream",
                await jetstream.publish(clients, batch, seconds, payloadBytes),
              );
          };
          await alternately(round, runCairn, runJetStream);
        }
      }
    }
    let groupNo = 0;
    for (let round = 0; round < rounds; round++) {
      for (const consumers of consumerCounts) {
        for (const batch of batches) {
          const key = `${consumers} ${batch}`;
          // Each ack mode on a fresh group over the same backlog, in an order alternating per round;
          // the first mode's runs are the table's Cairn figures.
          const runCairn = async () => {
            const modes = round % 2 === 0 ? ackModes : [...ackModes].reverse();
            for (const mode of modes) {
              const group = `g${groupNo++}`;
              await post("/v1/streams/bench/groups", {
                group,
                startAt: "first",
                ackWaitMs: 60_000,
                maxAckPending: 10_000,
              });
              const result = await consume(leaderUrl, group, consumers, batch, seconds, pids, mode);
              if (mode === ackModes[0]) record(consumes, key, "cairn", result);
              const runs = consumesByMode.get(`${key} ${mode}`) ?? [];
              runs.push(result);
              consumesByMode.set(`${key} ${mode}`, runs);
            }
          };
          const runJetStream = async () => {
            if (jetstream !== undefined)
              record(consumes, key, "jetstream", await jetstream.consume(consumers, batch, seconds));
          };
          await alternately(round, runCairn, runJetStream);
        }
      }
    }
  } finally {
    await jetstream?.close();
    await cairn.close();
  }

  const loadAfter = loadavg()[0] ?? 0;
  const fmt = (n: number, digits = 0) => n.toFixed(digits);
  /** The median of the rounds' own Cairn/JetStream ratios (paired, as bench/ab.ts). */
  const ratio = (a: readonly number[], b: readonly number[]) =>
    b.length === 0 ? "-" : `${fmt(median(a.map((x, i) => x / (b[i] ?? Number.NaN))), 2)}x`;
  const lines = [
    `${seconds} s per point, ${rounds} rounds (Cairn and JetStream alternate which goes first), medians; ` +
      `Cairn: 3 nodes, fsync on a majority before every acknowledgement, requests to the leader; ` +
      (withJetStream
        ? "JetStream: 3 nats-server 2.9 nodes, an R3 file stream (acknowledged before fsync: 2-minute sync interval), the nats npm client; "
        : "JetStream: not run (nats-server not installed; Debian: apt-get install nats-server); ") +
      `load average ${fmt(loadBefore, 1)} before, ${fmt(loadAfter, 1)} after\n`,
    `Appends of 100-byte messages to one stream (batch 1: one message per request or publish; batch ${appendBatch}: ` +
      `Cairn one POST of an array, JetStream that many asynchronous publishes awaited together):\n`,
    "| producers | batch | Cairn msgs/s | JetStream msgs/s | Cairn/JetStream | Cairn p50 / p99 ms | JetStream p50 / p99 ms | Cairn server CPU µs/msg | JetStream server CPU µs/msg | errors (C/J) |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const batch of appendBatch > 1 ? [1, appendBatch] : [1]) {
    for (const clients of clientCounts) {
      const runs = appends.get(`${clients} ${batch}`) ?? { cairn: [], jetstream: [] };
      const rate = (r: LoadResult) => r.opsPerSecond * batch;
      const cpu = (r: LoadResult) => r.cpuMicrosPerOp / batch;
      const c = runs.cairn;
      const j = runs.jetstream;
      lines.push(
        `| ${clients} | ${batch} | ${fmt(median(c.map(rate)))} | ${j.length > 0 ? fmt(median(j.map(rate))) : "-"} | ${ratio(c.map(rate), j.map(rate))} | ${fmt(median(c.map((r) => r.p50Ms)), 2)} / ${fmt(median(c.map((r) => r.p99Ms)), 2)} | ${j.length > 0 ? `${fmt(median(j.map((r) => r.p50Ms)), 2)} / ${fmt(median(j.map((r) => r.p99Ms)), 2)}` : "-"} | ${fmt(median(c.map(cpu)))} | ${j.length > 0 ? fmt(median(j.map(cpu))) : "-"} | ${c.reduce((s, r) => s + r.errors, 0)}/${j.reduce((s, r) => s + r.errors, 0)} |`,
      );
    }
  }
  lines.push(
    "",
    `Consumers, fetch a batch then ack it (Cairn, ack mode ${ackModes[0]}: ${ackModes[0] === "ride" ? "the batch is acknowledged by the next fetch, one replicated entry per round" : "a replicated fetch and one replicated ack of the batch"}; JetStream: a pull consumer's fetch and a confirmed ack, ackAck, of each message):\n`,
  );
  lines.push(
    "| consumers | batch | Cairn msgs/s | JetStream msgs/s | Cairn/JetStream | Cairn server CPU µs/msg | JetStream server CPU µs/msg | errors (C/J) |",
  );
  lines.push("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const consumers of consumerCounts) {
    for (const batch of batches) {
      const runs = consumes.get(`${consumers} ${batch}`) ?? { cairn: [], jetstream: [] };
      const c = runs.cairn;
      const j = runs.jetstream;
      const rate = (r: ConsumeResult) => r.messagesPerSecond;
      lines.push(
        `| ${consumers} | ${batch} | ${fmt(median(c.map(rate)))} | ${j.length > 0 ? fmt(median(j.map(rate))) : "-"} | ${ratio(c.map(rate), j.map(rate))} | ${fmt(median(c.map((r) => r.cpuMicrosPerMessage)))} | ${j.length > 0 ? fmt(median(j.map((r) => r.cpuMicrosPerMessage))) : "-"} | ${c.reduce((s, r) => s + r.errors, 0)}/${j.reduce((s, r) => s + r.errors, 0)} |`,
      );
    }
  }
  if (ackModes.length > 1) {
    const [a = "ride", b = "separate"] = ackModes;
    lines.push(
      "",
      `Cairn's ack modes, ${b} (A) against ${a} (B), alternated per round on fresh groups; B/A: median of the rounds' ratios [lowest, highest]:\n`,
      "| consumers | batch | A msgs/s | B msgs/s | B/A msgs/s | A CPU µs/msg | B CPU µs/msg | B/A CPU/msg |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const consumers of consumerCounts) {
      for (const batch of batches) {
        const runsA = consumesByMode.get(`${consumers} ${batch} ${b}`) ?? [];
        const runsB = consumesByMode.get(`${consumers} ${batch} ${a}`) ?? [];
        const paired = (f: (r: ConsumeResult) => number) => {
          const ratios = runsA.map((r, i) => f(runsB[i] ?? r) / f(r));
          return `${fmt(median(ratios), 2)} [${fmt(Math.min(...ratios), 2)}, ${fmt(Math.max(...ratios), 2)}]`;
        };
        const rate = (r: ConsumeResult) => r.messagesPerSecond;
        const cpu = (r: ConsumeResult) => r.cpuMicrosPerMessage;
        lines.push(
          `| ${consumers} | ${batch} | ${fmt(median(runsA.map(rate)))} | ${fmt(median(runsB.map(rate)))} | ${paired(rate)} | ${fmt(median(runsA.map(cpu)))} | ${fmt(median(runsB.map(cpu)))} | ${paired(cpu)} |`,
        );
      }
    }
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runStreamsBench(process.argv.slice(2)));
}
