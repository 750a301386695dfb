// Streams and consumer groups on a real three-node cluster of `cairn node` processes on 127.0.0.1,
// checked as a user would: appends through one node, retried by message id while the leader is
// SIGKILLed, are stored exactly once; a consumer group keeps delivering after the leader changes;
// an unacknowledged message comes back after its ack wait; a poison message lands in the
// dead-letter stream; a fetch retried with its Idempotency-Key through another node answers the same
// messages; a settings update and a single-message delete reach every replica alike.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CairnClientError } from "../../src/client/index.js";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

/** A client's pause before it retries a call that gave up. */
const backOff = () => new Promise((r) => setTimeout(r, 100));

describe("streams on a real cluster of node processes", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  let killed: ProcessNode | undefined;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.close();
  });

  it("stores each message exactly once when appends through a follower are retried across a leader kill", async () => {
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader);
    assert.ok(follower !== undefined);
    const client = cluster.client([follower]);
    await client.createStream("orders", { dedupeWindowMs: 120_000 });

    const acknowledged = new Map<string, number>();
    const produce = async (p: number) => {
      for (let i = 0; i < 40; i++) {
        const id = `p${p}-${i}`;
        // A call that gives up is retried with the same message id: the stream stores it once.
        for (;;) {
          try {
            acknowledged.set(id, (await client.append("orders", id, { id })).seq);
            break;
          } catch (error) {
            if (!(error instanceof CairnClientError)) throw error;
            await backOff();
          }
        }
      }
    };
    const producers = [0, 1, 2, 3].map(produce);
    await waitFor("30 acknowledged appends", () => acknowledged.size >= 30, { timeoutMs: 60_000 });
    await cluster.kill(leader, "SIGKILL");
    killed = leader;
    await Promise.all(producers);

    const page = await client.read("orders", { from: 1, limit: 1000 });
    const payloads = page.messages.map((m) => m.payload);
    assert.equal(payloads.length, 160);
    assert.equal(new Set(payloads).size, 160, "no message stored twice");
    const bySeq = new Map(page.messages.map((m) => [m.seq, m.payload]));
    for (const [id, seq] of acknowledged) assert.equal(bySeq.get(seq), id);
    // Sequences are dense from 1.
    assert.deepEqual(
      page.messages.map((m) => m.seq),
      Array.from({ length: 160 }, (_, i) => i + 1),
    );
  });

  it("keeps delivering to a consumer group after the leader changes", async () => {
    if (killed !== undefined) await cluster.start(killed);
    const client = cluster.client();
    await client.createStream("jobs");
    await client.createGroup("jobs", "workers", { startAt: "first", ackWaitMs: 60_000 });
    for (let i = 1; i <= 10; i++) await client.append("jobs", `job-${i}`, { id: `job-${i}` });
    const first = await client.fetchMessages("jobs", "workers", "w1", { max: 5 });
    await client.ack(
      "jobs",
      "workers",
      first.map((m) => m.seq),
    );
    const leader = await cluster.leader();
    await cluster.kill(leader, "SIGKILL");
    const survivors = cluster.client(cluster.nodes.filter((n) => n !== leader));
    const rest = await survivors.fetchMessages("jobs", "workers", "w2", { max: 10, waitMs: 2_000 });
    assert.deepEqual(
      [...first, ...rest].map((m) => m.payload),
      Array.from({ length: 10 }, (_, i) => `job-${i + 1}`),
    );
    await survivors.ack(
      "jobs",
      "workers",
      rest.map((m) => m.seq),
    );
    const info = await survivors.groupInfo("jobs", "workers");
    assert.equal(info.acked, 10);
    assert.equal(info.pending, 0);
    await cluster.start(leader);
  });

  it("redelivers an unacknowledged message after its ack wait", async () => {
    const client = cluster.client();
    await client.createStream("retry");
    await client.createGroup("retry", "g", { ackWaitMs: 500 });
    await client.append("retry", "work");
    const once = await client.fetchMessages("retry", "g", "slow", { max: 1 });
    assert.deepEqual(
      once.map((m) => [m.seq, m.deliveries]),
      [[1, 1]],
    );
    // Waits for the deadline to pass (by the leader's clock) and hands it to another consumer.
    const again = await client.fetchMessages("retry", "g", "fast", { max: 1, waitMs: 10_000 });
    assert.deepEqual(
      again.map((m) => [m.seq, m.deliveries]),
      [[1, 2]],
    );
  });

  it("moves a poison message to the dead-letter stream", async () => {
    const client = cluster.client();
    await client.createStream("poison");
    await client.createGroup("poison", "g", { ackWaitMs: 200, maxDeliveries: 2 });
    await client.append("poison", "boom", { headers: { kind: "bad" } });
    await client.append("poison", "fine");
    const seen: string[] = [];
    // A consumer that acknowledges all but "boom", until the group dead-letters it.
    await waitFor(
      "the poison message to be dead-lettered",
      async () => {
        const messages = await client.fetchMessages("poison", "g", "c", { max: 5, waitMs: 1_000 });
        for (const m of messages) {
          seen.push(`${m.payload}#${m.deliveries}`);
          if (m.payload === "fine") await client.ack("poison", "g", [m.seq]);
        }
        return (await client.groupInfo("poison", "g")).deadLettered === 1;
      },
      { timeoutMs: 20_000, intervalMs: 0 },
    );
    assert.deepEqual(
      seen.filter((s) => s.startsWith("boom")),
      ["boom#1", "boom#2"],
    );
    const dlq = await client.read("poison.g.dlq", { from: 1 });
    assert.equal(dlq.messages.length, 1);
    assert.equal(dlq.messages[0]?.payload, "boom");
    assert.equal(dlq.messages[0]?.headers["cairn-dlq-reason"], "max-deliveries");
    assert.equal(dlq.messages[0]?.headers["kind"], "bad");
  });

  it("answers a fetch retried with its Idempotency-Key through another node with the same messages", async () => {
    const client = cluster.client();
    await client.createStream("keyed");
    await client.createGroup("keyed", "g", { ackWaitMs: 60_000 });
    for (let i = 1; i <= 3; i++) await client.append("keyed", `m${i}`);
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader && n.process !== undefined);
    assert.ok(follower !== undefined);
    const fetchVia = async (node: ProcessNode, key: string) => {
      const response = await fetch(`${node.httpUrl}/v1/streams/keyed/groups/g/fetch`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify({ consumer: "c", max: 2 }),
      });
      assert.equal(response.status, 200);
      return (await response.json()) as {
        messages: { seq: number; deliveries: number }[];
        duplicate: boolean;
      };
    };
    // The first attempt goes through a follower (forwarded); its retry reaches the leader itself.
    const first = await fetchVia(follower, "fetch-1");
    assert.deepEqual(
      first.messages.map((m) => [m.seq, m.deliveries]),
      [
        [1, 1],
        [2, 1],
      ],
    );
    assert.deepEqual(await fetchVia(leader, "fetch-1"), { ...first, duplicate: true });
    assert.equal((await client.groupInfo("keyed", "g")).delivered, 2, "nothing handed out twice");
  });

  it("applies a settings update and a single-message delete alike on every replica", async () => {
    const client = cluster.client();
    await client.createStream("trim");
    await client.createGroup("trim", "g", { ackWaitMs: 60_000 });
    for (let i = 1; i <= 5; i++) await client.append("trim", `m${i}`);
    await client.fetchMessages("trim", "g", "c", { max: 5 });
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader && n.process !== undefined);
    assert.ok(follower !== undefined);
    const send = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${follower.httpUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      assert.equal(response.status, 200, await response.clone().text());
      return (await response.json()) as Record<string, unknown>;
    };
    const patched = await send("PATCH", "/v1/streams/trim", { maxMessages: 3 });
    assert.deepEqual([patched["updated"], (patched["stream"] as { firstSeq: number }).firstSeq], [true, 3]);
    assert.deepEqual(await send("DELETE", "/v1/streams/trim/messages/4"), {
      deleted: true,
      duplicate: false,
    });
    const expected = { firstSeq: 3, lastSeq: 5, messages: 2 };
    assert.deepEqual(pick(await client.streamInfo("trim")), expected);
    // Every node's own state converges to the same stream (read locally, as followers apply later).
    for (const node of cluster.nodes) {
      await waitFor(
        `${node.name} to apply the update and the delete`,
        async () => {
          const response = await fetch(`${node.httpUrl}/v1/streams/trim?consistency=stale`);
          const seen = pick(
            (await response.json()) as { firstSeq: number; lastSeq: number; messages: number },
          );
          return JSON.stringify(seen) === JSON.stringify(expected);
        },
        { intervalMs: 50 },
      );
    }
    // The group forgot message 4; the ones retention dropped go when their deadlines pass.
    const group = await client.groupInfo("trim", "g");
    assert.equal(group.pending, 4);
  });
});

function pick(info: { firstSeq: number; lastSeq: number; messages: number } | undefined) {
  return info === undefined
    ? undefined
    : { firstSeq: info.firstSeq, lastSeq: info.lastSeq, messages: info.messages };
}
