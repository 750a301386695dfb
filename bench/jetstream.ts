// NATS JetStream beside Cairn in the streams benchmark: 3 `nats-server` processes (Debian's
// package) clustered with JetStream, one R3 file stream, and the NATS project's Node client. Closed
// loops like bench/load.ts's: producers that publish one message (or a batch of asynchronous
// publishes) and wait for the stream's acknowledgement, and pull consumers that fetch a batch and
// acknowledge each message with a confirmed ack (ackAck), as Cairn's consumers wait for their ack.
// JetStream acknowledges a publish once a majority holds it in memory; its file store syncs to disk
// every 2 minutes by default (nats-server 2.9), where Cairn fsyncs on a majority first.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  type JetStreamClient,
  type NatsConnection,
  nanos,
  StorageType,
} from "nats";
import { cpuSecondsOf, type LoadResult, loadResultOf, sleep, waitFor } from "./load.js";

/** Whether `nats-server` is installed. */
export function haveNatsServer(): boolean {
  return spawnSync("nats-server", ["--version"]).status === 0;
}

/** A running 3-node JetStream cluster with the stream `bench` (R3, file storage). */
export interface JetStreamCluster {
  readonly pids: readonly number[];
  /** Publishes from `producers` closed loops, `batch` messages per round (1: single publishes). */
  publish(producers: number, batch: number, seconds: number, payload: Uint8Array): Promise<LoadResult>;
  /** Pull consumers on a fresh durable over the stream: fetch up to `batch`, ack each (confirmed). */
  consume(consumers: number, batch: number, seconds: number): Promise<ConsumeResult>;
  close(): Promise<void>;
}

/** What a consumer point measured. */
export interface ConsumeResult {
  readonly messagesPerSecond: number;
  readonly roundsPerSecond: number;
  readonly errors: number;
  readonly cpuMicrosPerMessage: number;
}

const connectionsMax = 64;

/** Starts 3 nats-server processes with JetStream on client ports base..base+2 (routes at base+20..). */
export async function startJetStream(basePort: number): Promise<JetStreamCluster> {
  const dir = await mkdtemp(join(tmpdir(), "jetstream-bench-"));
  const clientPort = (i: number) => basePort + i;
  const routePort = (i: number) => basePort + 20 + i;
  const children = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const routes = [0, 1, 2].filter((j) => j !== i).map((j) => `"nats-route://127.0.0.1:${routePort(j)}"`);
      const config = join(dir, `n${i}.conf`);
      await writeFile(
        config,
        [
          `server_name: n${i}`,
          `listen: "127.0.0.1:${clientPort(i)}"`,
          `jetstream { store_dir: "${join(dir, `n${i}`)}" }`,
          `cluster { name: bench, listen: "127.0.0.1:${routePort(i)}", routes: [${routes.join(", ")}] }`,
        ].join("\n"),
      );
      return spawn("nats-server", ["-c", config], { stdio: "ignore" });
    }),
  );
  const servers = [0, 1, 2].map((i) => `127.0.0.1:${clientPort(i)}`);
  const connections: NatsConnection[] = [];
  const close = async () => {
    await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
    for (const c of children) c.kill("SIGKILL");
    await sleep(200);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const admin = await waitFor("the JetStream cluster", async () => connect({ servers }));
    connections.push(admin);
    // The cluster answers JetStream requests once it has elected its meta leader.
    const jsm = await waitFor("JetStream's meta leader", async () => admin.jetstreamManager());
    await waitFor("an R3 JetStream stream", async () =>
      jsm.streams.add({ name: "bench", subjects: ["bench"], num_replicas: 3, storage: StorageType.File }),
    );
    const clients: JetStreamClient[] = [];
    for (let i = 0; i < connectionsMax; i++) {
      const nc = await connect({ servers });
      connections.push(nc);
      clients.push(nc.jetstream());
    }
    const pids = children.map((c) => c.pid ?? 0);
    const cpu = () => pids.map(cpuSecondsOf);
    let durableNo = 0;
    return {
      pids,
      async publish(producers, batch, seconds, payload) {
        const latencies: number[] = [];
        let errors = 0;
        const cpuBefore = cpu();
        const clientCpuBefore = process.cpuUsage();
        const started = performance.now();
        const deadline = started + seconds * 1000;
        await Promise.all(
          Array.from({ length: producers }, async (_, p) => {
            const js = clients[p % clients.length];
            if (js === undefined) return;
            while (performance.now() < deadline) {
              const t0 = performance.now();
              try {
                await Promise.all(Array.from({ length: batch }, () => js.publish("bench", payload)));
                latencies.push(performance.now() - t0);
              } catch {
                errors++;
              }
            }
          }),
        );
        const elapsed = (performance.now() - started) / 1000;
        const used = cpu().map((c, i) => c - (cpuBefore[i] ?? 0));
        return loadResultOf(latencies, errors, elapsed, used, process.cpuUsage(clientCpuBefore));
      },
      async consume(consumers, batch, seconds) {
        const durable = `g${durableNo++}`;
        await jsm.consumers.add("bench", {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(60_000),
          max_ack_pending: 10_000,
        });
        let messages = 0;
        let rounds = 0;
        let errors = 0;
        const cpuBefore = cpu();
        const started = performance.now();
        const deadline = started + seconds * 1000;
        await Promise.all(
          Array.from({ length: consumers }, async (_, c) => {
            const js = clients[c % clients.length];
            if (js === undefined) return;
            const consumer = await js.consumers.get("bench", durable);
            while (performance.now() < deadline) {
              try {
                const fetched = await consumer.fetch({ max_messages: batch, expires: 1000 });
                const acks: Promise<boolean>[] = [];
                for await (const m of fetched) acks.push(m.ackAck());
                if (acks.length === 0) break;
                await Promise.all(acks);
                messages += acks.length;
                rounds++;
              } catch {
                errors++;
              }
            }
          }),
        );
        const elapsed = (performance.now() - started) / 1000;
        const used = cpu().reduce((s, c, i) => s + c - (cpuBefore[i] ?? 0), 0);
        return {
          messagesPerSecond: messages / elapsed,
          roundsPerSecond: rounds / elapsed,
          errors,
          cpuMicrosPerMessage: messages === 0 ? 0 : (used * 1e6) / messages,
        };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
