// The load points of the A/B comparison and the profiler (bench/ab.ts, bench/profile.ts): what
// `put:64` means (64 closed-loop clients, each writing 100-byte values over 1,000 keys), and how a
// fresh cluster is made ready for them (the keys written, the stream created, a warm-up).
import { type BenchCluster, type RequestSpec, runLoad } from "./load.js";

/** An operation a point measures. */
export type Op = "put" | "get" | "append";

/** One load point: an operation and how many concurrent clients send it. */
export interface Point {
  readonly op: Op;
  readonly clients: number;
}

const keys = 1000;
const value = "v".repeat(100);

/** Parses `put:1,get:64,append:64`. */
export function parsePoints(text: string): Point[] {
  return text.split(",").map((p) => {
    const [op, clients] = p.split(":");
    if (op !== "put" && op !== "get" && op !== "append") throw new Error(`unknown op in ${p}`);
    const count = Number(clients);
    if (!Number.isSafeInteger(count) || count < 1) throw new Error(`bad client count in ${p}`);
    return { op, clients: count };
  });
}

/** The `n`th request of client `client` at a point of operation `op`. */
export function pointRequest(op: Op, client: number, n: number): RequestSpec {
  const key = `key-${(client * 7919 + n) % keys}`;
  switch (op) {
    case "put":
      return { method: "PUT", path: `/v1/kv/${key}`, body: JSON.stringify({ value }) };
    case "get":
      return { method: "GET", path: `/v1/kv/${key}` };
    case "append":
      return { method: "POST", path: "/v1/streams/bench/messages", body: JSON.stringify({ payload: value }) };
  }
}

/** Runs `point` against `cluster`'s leader for `seconds`. */
export function runPoint(cluster: BenchCluster, point: Point, seconds: number) {
  return runLoad({
    url: cluster.leaderUrl,
    clients: point.clients,
    seconds,
    serverPids: cluster.pids,
    next: (c, n) => pointRequest(point.op, c, n),
  });
}

/** Writes every key once, creates the stream `bench` and warms the cluster up with 2 s of puts. */
export async function preparePoints(cluster: BenchCluster): Promise<void> {
  for (let k = 0; k < keys; k++) {
    await fetch(`${cluster.leaderUrl}/v1/kv/key-${k}`, {
      method: "PUT",
      body: JSON.stringify({ value }),
      headers: { "content-type": "application/json" },
    });
  }
  await fetch(`${cluster.leaderUrl}/v1/streams`, {
    method: "POST",
    body: JSON.stringify({ name: "bench" }),
    headers: { "content-type": "application/json" },
  });
  // Warm up (JIT, connection setup) before anything is measured.
  await runPoint(cluster, { op: "put", clients: 16 }, 2);
}
