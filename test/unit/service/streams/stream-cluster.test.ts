// Streams and consumer groups on three real Raft runtimes in one process: the leader crashes in the
// middle of appends that producers retry by message id, and a consumer group keeps working across
// the crash. Afterwards every acknowledged append is present exactly once, every node's reader sees
// one and the same order, and every message the group has seen is acked, in flight or dead-lettered.
// The cluster runs on the simulator's clock, so the crash lands at the same point on every run.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCairnError } from "../../../../src/service/errors.js";
import {
  getGroupMeta,
  getStreamMeta,
  listPending,
  readMessages,
} from "../../../../src/service/streams/index.js";
import type { StreamService } from "../../../../src/service/streams/stream-service.js";
import { utf8 } from "../../../../src/util/bytes.js";
import { InProcessCluster, runClockDuringTests } from "../../../support/in-process-cluster.js";

const retryable = new Set(["ERR_NOT_LEADER", "ERR_UNAVAILABLE", "ERR_TIMEOUT", "ERR_SHUTTING_DOWN"]);

describe("streams on an in-process three-node cluster", { timeout: 60_000 }, () => {
  const cluster = new InProcessCluster(3);
  runClockDuringTests(cluster);
  const clock = cluster.clock;

  /** Runs `op` on the current leader's stream service, retrying through elections, as a client would. */
  async function onLeader<T>(op: (streams: StreamService) => Promise<T>): Promise<T> {
    const deadline = clock.nowMs + 20_000;
    for (;;) {
      try {
        const leader = await cluster.leader();
        return await op(leader.streams);
      } catch (error) {
        if (!(isCairnError(error) && retryable.has(error.code)) || clock.nowMs > deadline) throw error;
        // A client's back-off before its retry, in simulated time.
        await clock.sleep(20);
      }
    }
  }

  it("keeps every acknowledged append exactly once, in one order, across a leader crash", async () => {
    await cluster.startAll();
    await onLeader((s) => s.create("orders", { dedupeWindowMs: 60_000 }));
    await onLeader((s) => s.createGroup("orders", "workers", { ackWaitMs: 300, maxDeliveries: 3 }));

    const acknowledged = new Map<string, number>();
    const producer = async (p: number) => {
      for (let i = 0; i < 25; i++) {
        const id = `p${p}-${i}`;
        const ack = await onLeader((s) => s.append("orders", { payload: utf8(id), msgId: id }));
        acknowledged.set(id, ack.seq);
      }
    };
    const delivered = new Set<number>();
    const consumed = new Set<number>();
    const terminated = new Set<number>();
    // An ack whose answer was lost (the leader crashed after applying it) is retried, and the retry
    // reports nothing newly settled: such a message is acked though no answer said so.
    const ackAttempted = new Set<number>();
    let stop = false;
    const consumer = async () => {
      while (!stop) {
        const { messages } = await onLeader((s) =>
          s.fetch("orders", "workers", "c", { max: 10, waitMs: 100 }),
        );
        for (const m of messages) delivered.add(m.seq);
        // Settle some, leave some in flight (redelivered later), terminate a few.
        const ack = messages.filter((m) => m.seq % 7 !== 0 && m.seq % 11 !== 0).map((m) => m.seq);
        const term = messages.filter((m) => m.seq % 11 === 0).map((m) => m.seq);
        if (ack.length > 0) {
          for (const seq of ack) ackAttempted.add(seq);
          const r = await onLeader((s) => s.settle("orders", "workers", "ack", ack));
          for (const seq of r.settled) consumed.add(seq);
        }
        if (term.length > 0) {
          const r = await onLeader((s) => s.settle("orders", "workers", "term", term));
          for (const seq of r.settled) terminated.add(seq);
        }
      }
    };

    const producers = [0, 1, 2].map(producer);
    const consuming = consumer();
    // Crash the leader once appends are under way, then bring it back.
    await clock.waitFor("20 acknowledged appends", () => acknowledged.size >= 20);
    const crashed = await cluster.leader();
    await cluster.stop(crashed.id);
    await clock.waitFor("50 acknowledged appends", () => acknowledged.size >= 50);
    await cluster.start(crashed.id);
    await Promise.all(producers);
    // Let the consumer go on until the group has handed out every message at least once.
    await clock.waitFor("the group to hand out all 75 messages", () => delivered.size >= 75, 20_000);
    stop = true;
    await consuming;

    // Every node (the restarted one included) sees the same stream after a linearizable read.
    const views: string[][] = [];
    for (const member of cluster.nodes.values()) {
      const streams = member.node?.streams;
      assert.ok(streams !== undefined);
      const page = await onLeader(() => streams.read("orders", { from: 1, limit: 1000 }));
      views.push(page.messages.map((m) => `${m.seq}:${new TextDecoder().decode(m.payload)}`));
    }
    assert.equal(views[0]?.length, 75, "each of 75 messages exactly once");
    for (const view of views) assert.deepEqual(view, views[0]);
    const payloadAt = new Map((views[0] ?? []).map((v) => [Number(v.split(":")[0]), v.split(":")[1]]));
    assert.equal(new Set(payloadAt.values()).size, 75, "no message twice");
    for (const [id, seq] of acknowledged)
      assert.equal(payloadAt.get(seq), id, `acknowledged ${id} at ${seq}`);

    // Every message the group has seen is acked, in flight, or dead-lettered (terminated) - once.
    const leader = await cluster.leader();
    const state = leader.backend.reader;
    await onLeader((s) => s.groupInfo("orders", "workers"));
    const stream = getStreamMeta(state, "orders");
    assert.ok(stream !== undefined);
    const group = getGroupMeta(state, stream, "workers");
    assert.ok(group !== undefined);
    const inFlight = new Set(listPending(state, group, 10_000).map((p) => p.seq));
    const dlq = getStreamMeta(state, "orders.workers.dlq");
    const dead = new Set(
      dlq === undefined
        ? []
        : readMessages(state, dlq, 1, 1000, 1 << 30).messages.map((m) =>
            Number(new Map(m.headers).get("cairn-dlq-seq")),
          ),
    );
    for (let seq = 1; seq < group.nextSeq; seq++) {
      const acked = consumed.has(seq) || (ackAttempted.has(seq) && !inFlight.has(seq) && !dead.has(seq));
      const places = [acked, inFlight.has(seq), dead.has(seq)].filter(Boolean).length;

      assert.equal(places, 1, `message ${seq} is in ${places} places`);
    }
    for (const seq of terminated) assert.ok(dead.has(seq));
  });
});
