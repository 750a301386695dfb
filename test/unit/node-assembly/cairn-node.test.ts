// CairnNode's housekeeping on the injected clock: three nodes assembled as `cairn node` assembles
// them (the in-process cluster, on the simulator's clock) remove an expired key and a stream's
// messages past their max age from every replica with no client doing anything, because the
// leader's periodic sweeps propose the removals. Without the sweeps both would stay stored.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nextExpiryMs } from "../../../src/service/index.js";
import { getStreamMeta, readMessages } from "../../../src/service/streams/index.js";
import { utf8 } from "../../../src/util/bytes.js";
import { InProcessCluster, runClockDuringTests } from "../../support/in-process-cluster.js";

describe("CairnNode housekeeping", () => {
  const cluster = new InProcessCluster(3, 7);
  runClockDuringTests(cluster);

  it("sweeps an expired key off every replica on the leader's clock", async () => {
    await cluster.startAll();
    const leader = await cluster.leader();
    await leader.kv.put(utf8("short"), utf8("lived"), { ttlMs: 300 });
    await leader.kv.put(utf8("kept"), utf8("forever"));
    const replicas = [leader, ...cluster.others(leader.id)];
    assert.notEqual(nextExpiryMs(leader.backend.reader), undefined, "the leader holds a key with a TTL");
    await cluster.clock.waitFor(
      "every replica to drop the expired key",
      () => replicas.every((n) => nextExpiryMs(n.backend.reader) === undefined),
      5_000,
    );
    for (const node of replicas) {
      assert.equal((await node.kv.get(utf8("short"), "stale")).record, undefined);
      assert.equal(
        new TextDecoder().decode((await node.kv.get(utf8("kept"), "stale")).record?.value),
        "forever",
      );
    }
  });

  it("sweeps a stream's messages past its max age with no append to trigger it", async () => {
    const leader = await cluster.leader();
    await leader.streams.create("ages", { maxAgeMs: 500 });
    for (let i = 0; i < 3; i++) await leader.streams.append("ages", { payload: utf8(`m${i}`) });
    const replicas = [leader, ...cluster.others(leader.id)];
    const held = (reader: (typeof leader)["backend"]["reader"]) => {
      const meta = getStreamMeta(reader, "ages");
      return meta === undefined ? -1 : readMessages(reader, meta, 1, 10, 1 << 20).messages.length;
    };
    await cluster.clock.waitFor("every replica to hold the appends", () =>
      replicas.every((n) => held(n.backend.reader) === 3),
    );
    await cluster.clock.waitFor(
      "every replica to drop the aged messages",
      () => replicas.every((n) => held(n.backend.reader) === 0),
      5_000,
    );
  });
});
