// A fetch that acknowledges the consumer's previous batch: on three real Raft runtimes in one process
// (the real command batcher, the simulator's clock), the ack and the fetch ride in one log entry, and
// the consumer-group contract holds as with a separate ack: what was acknowledged is never delivered
// again, what was not is delivered again after the ack wait, bad input changes nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCairnError } from "../../../../src/service/errors.js";
import { utf8 } from "../../../../src/util/bytes.js";
import { InProcessCluster, runClockDuringTests } from "../../../support/in-process-cluster.js";

describe("StreamService.fetch with ack", { timeout: 60_000 }, () => {
  const cluster = new InProcessCluster(3, 7);
  runClockDuringTests(cluster);

  let streamsMade = 0;

  /** A fresh stream of 6 messages with a group `g` (ack wait 1 s), on a started cluster's leader. */
  async function setup() {
    if (streamsMade === 0) await cluster.startAll();
    const leader = await cluster.leader();
    const streams = leader.streams;
    const s = `s${++streamsMade}`;
    await streams.create(s);
    for (let i = 1; i <= 6; i++) await streams.append(s, { payload: utf8(`m${i}`) });
    await streams.createGroup(s, "g", { ackWaitMs: 1_000 });
    return { leader, streams, s };
  }

  it("acknowledges the previous batch and hands out the next in one entry", async () => {
    const { leader, streams, s } = await setup();
    const first = await streams.fetch(s, "g", "c", { max: 2 });
    assert.deepEqual(
      first.messages.map((m) => m.seq),
      [1, 2],
    );
    assert.equal(first.acked, undefined);

    const before = leader.group.appliedIndex;
    const second = await streams.fetch(s, "g", "c", { max: 2, ack: [1, 2] });
    assert.equal(leader.group.appliedIndex, before + 1, "the ack and the fetch share one entry");
    assert.deepEqual(
      second.messages.map((m) => m.seq),
      [3, 4],
    );
    assert.deepEqual(second.acked, { settled: [1, 2], notPending: [] });
    assert.equal((await streams.groupInfo(s, "g")).pending, 2);
  });

  it("reports sequences that were not in flight, as an ack does", async () => {
    const { streams, s } = await setup();
    await streams.fetch(s, "g", "c", { max: 1 });
    const answer = await streams.fetch(s, "g", "c", { max: 1, ack: [1, 5] });
    assert.deepEqual(answer.acked, { settled: [1], notPending: [5] });
  });

  it("keeps the contract: acknowledged messages never return, the others after the ack wait", async () => {
    const { streams, s } = await setup();
    await streams.fetch(s, "g", "c", { max: 3 });
    await streams.fetch(s, "g", "c", { max: 1, ack: [1, 3] });
    await cluster.clock.sleep(1_500);
    const again = await streams.fetch(s, "g", "c", { max: 10 });
    assert.deepEqual(
      again.messages.map((m) => [m.seq, m.deliveries]),
      [
        [2, 2],
        [4, 2],
        [5, 1],
        [6, 1],
      ],
    );
  });

  it("an empty ack is nothing to acknowledge", async () => {
    const { streams, s } = await setup();
    const answer = await streams.fetch(s, "g", "c", { max: 1, ack: [] });
    assert.deepEqual(
      answer.messages.map((m) => m.seq),
      [1],
    );
    assert.equal(answer.acked, undefined);
  });

  it("refuses a bad sequence before proposing anything: no entry, nothing delivered", async () => {
    const { leader, streams, s } = await setup();
    await streams.fetch(s, "g", "c", { max: 1 });
    const before = leader.group.appliedIndex;
    await assert.rejects(
      streams.fetch(s, "g", "c", { max: 1, ack: [1, 0] }),
      (error) => isCairnError(error) && error.code === "ERR_BAD_REQUEST",
    );
    assert.equal(leader.group.appliedIndex, before);
    assert.equal((await streams.groupInfo(s, "g")).pending, 1);
  });
});
