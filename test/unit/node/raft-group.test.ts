// The runtime end to end in one process: three nodes assembled by CairnNode (as `cairn node` does)
// over the in-memory transport. A leader is elected, writes are acknowledged only once applied,
// linearizable reads on followers see them, a follower refuses raw proposals but hands a client's
// write to the leader, and acknowledged writes survive the leader's crash and a full restart. The
// cluster runs on the simulator's clock (its timers, disk and message deliveries are scheduler
// events), so each run elects, crashes and heals the same way.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeError } from "../../../src/node/node-error.js";
import { encodeEnvelope } from "../../../src/service/command.js";
import { CairnError } from "../../../src/service/errors.js";
import { utf8 } from "../../../src/util/bytes.js";
import { InProcessCluster, runClockDuringTests } from "../../support/in-process-cluster.js";
import { waitFor } from "../../support/wait-for.js";

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

describe("RaftGroup runtime (in-process cluster)", () => {
  const cluster = new InProcessCluster(3);
  runClockDuringTests(cluster);

  it("elects a leader and acknowledges a write once applied", async () => {
    await cluster.startAll();
    const leader = await cluster.leader();
    const before = (await leader.kv.get(utf8("k"))).revision;
    const ack = await leader.kv.put(utf8("k"), utf8("v1"));
    assert.ok(ack.revision > before, "the write took the next revision");
    assert.equal(text((await leader.kv.get(utf8("k"))).record?.value), "v1");
  });

  it("serves linearizable reads on followers after the leader acknowledged", async () => {
    const leader = await cluster.leader();
    await leader.kv.put(utf8("k"), utf8("v2"));
    for (const node of cluster.others(leader.id)) {
      assert.equal(text((await node.kv.get(utf8("k"))).record?.value), "v2", `follower ${node.id}`);
    }
  });

  it("refuses a raw proposal on a follower with ERR_NOT_LEADER naming the leader, and hands a write to it", async () => {
    const leader = await cluster.leader();
    const follower = cluster.others(leader.id)[0];
    assert.ok(follower !== undefined);
    await assert.rejects(follower.group.propose(utf8("x")), (error: unknown) => {
      return error instanceof NodeError && error.code === "ERR_NOT_LEADER" && error.leaderId === leader.id;
    });
    await follower.kv.put(utf8("via-follower"), utf8("yes"));
    assert.equal(text((await leader.kv.get(utf8("via-follower"))).record?.value), "yes");
  });

  it("fails a deposed leader's pending proposals at once with ERR_TIMEOUT (outcome unknown)", async () => {
    const leader = await cluster.leader();
    cluster.isolate(leader.id);
    const pending = leader.group.propose(utf8("x"));
    await assert.rejects(pending, (error: unknown) => {
      return (
        error instanceof NodeError &&
        error.code === "ERR_TIMEOUT" &&
        /leadership was lost/.test(error.message)
      );
    });
    cluster.reconnect(leader.id);
    await cluster.leader();
  });

  it("keeps every acknowledged write when the leader crashes", async () => {
    const leader = await cluster.leader();
    for (let i = 0; i < 20; i++) await leader.kv.put(utf8(`w${i}`), utf8(String(i)));
    await cluster.stop(leader.id);
    const next = await cluster.leader();
    assert.notEqual(next.id, leader.id);
    for (let i = 0; i < 20; i++)
      assert.equal(text((await next.kv.get(utf8(`w${i}`))).record?.value), String(i));
    await cluster.start(leader.id);
  });

  it("keeps every acknowledged write across a full restart", async () => {
    await cluster.close();
    await cluster.startAll();
    const leader = await cluster.leader();
    assert.equal(text((await leader.kv.get(utf8("w19"))).record?.value), "19");
    assert.equal(text((await leader.kv.get(utf8("k"))).record?.value), "v2");
  });

  it("sends new entries and acknowledgements at once, and lets a bare commit update wait", async () => {
    const leader = await cluster.leader();
    cluster.sends = [];
    for (let i = 0; i < 10; i++) await leader.kv.put(utf8("urgent"), utf8(String(i)));
    const sends = cluster.sends;
    cluster.sends = undefined;
    const commitOnly = (s: (typeof sends)[number]) =>
      s.messages.every((m) => m.type === "append" && m.entries.length === 0);
    for (const s of sends) {
      if (s.messages.some((m) => m.type === "append" && m.entries.length > 0))
        assert.equal(s.urgent, true, "a leader's new entries are urgent");
      if (s.messages.some((m) => m.type === "append-response"))
        assert.equal(s.urgent, true, "acknowledgements are urgent");
      if (commitOnly(s)) assert.equal(s.urgent, false, "a commit-only update may wait");
    }
    assert.ok(sends.some(commitOnly), "commit-only updates were sent");
  });

  it("fails reads and writes of an isolated leader instead of answering stale", async () => {
    const leader = await cluster.leader();
    cluster.isolate(leader.id);
    await assert.rejects(leader.kv.get(utf8("k")), (error: unknown) => {
      return error instanceof CairnError && ["ERR_UNAVAILABLE", "ERR_NOT_LEADER"].includes(error.code);
    });
    cluster.reconnect(leader.id);
    // Until its majority answers again, a leader that was cut off refuses at once (ERR_UNAVAILABLE,
    // nothing done) rather than serving; the client's retry finds the healed cluster.
    let value: string | undefined;
    await waitFor("a read through the healed cluster", async () => {
      const healed = await cluster.leader();
      try {
        value = text((await healed.kv.get(utf8("k"))).record?.value);
        return true;
      } catch (error) {
        if (error instanceof CairnError && error.code === "ERR_UNAVAILABLE") return false;
        throw error;
      }
    });
    assert.equal(value, "v2");
  });
});

describe("RaftGroup runtime: a stopped node serves no reads at all", () => {
  const cluster = new InProcessCluster(3);
  runClockDuringTests(cluster);

  it("refuses stale reads once its storage failed (fail-stop)", async () => {
    await cluster.startAll();
    const leader = await cluster.leader();
    await leader.kv.put(utf8("k"), utf8("v"));
    cluster
      .member(leader.id)
      .storage?.failWith(Object.assign(new Error("EIO"), { code: "ERR_STORAGE_FAILED" }));
    await assert.rejects(leader.kv.put(utf8("k"), utf8("lost")), (error: unknown) => {
      return error instanceof CairnError && error.code === "ERR_STORAGE_FAILED";
    });
    await assert.rejects(leader.kv.get(utf8("k"), "stale"), (error: unknown) => {
      return error instanceof CairnError && error.code === "ERR_STORAGE_FAILED";
    });
  });
});

/** A harmless entry to propose directly: an expiry sweep of at most one key. */
const sweep = () =>
  encodeEnvelope({ tsMs: 0, command: { service: "kv", command: { type: "expire", max: 1 } } });

describe("RaftGroup runtime: the write concern all", () => {
  const cluster = new InProcessCluster(3, 7);
  runClockDuringTests(cluster);

  it("acknowledges only once every voter has the entry on disk", async () => {
    await cluster.startAll();
    const leader = await cluster.leader();
    const slow = cluster.others(leader.id)[0];
    const storage = slow === undefined ? undefined : cluster.member(slow.id).storage;
    assert.ok(slow !== undefined && storage !== undefined);
    // One follower's disk holds its writes until released; the other follower makes the majority.
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const persist = storage.persist.bind(storage);
    storage.persist = async (batch) => {
      await released;
      await persist(batch);
    };
    const { index } = await leader.group.proposeWithIndex(sweep());
    let settled = false;
    const all = leader.group.waitReplicatedToAll(index, 10_000).finally(() => {
      settled = true;
    });
    // Committed and applied on a majority; a later write commits too, and the wait still holds.
    await leader.kv.put(utf8("later"), utf8("x"));
    assert.equal(settled, false, "not acknowledged while a voter lacks the entry");
    assert.ok(slow.group.status().persistedIndex < index, "the slow voter has not persisted it");
    release();
    await all;
    assert.ok(slow.group.status().persistedIndex >= index, "the slow voter has it on disk");
    storage.persist = persist;
  });

  it("answers ERR_WRITE_CONCERN naming how many voters have it when a voter is cut off", async () => {
    const leader = await cluster.leader();
    const cut = cluster.others(leader.id)[0];
    assert.ok(cut !== undefined);
    cluster.isolate(cut.id);
    await assert.rejects(leader.kv.withWriteConcern("all").put(utf8("wc"), utf8("v")), (error: unknown) => {
      assert.ok(error instanceof CairnError && error.is("ERR_WRITE_CONCERN"), String(error));
      assert.deepEqual(error.details, { votersWithEntry: 2, voters: 3 });
      assert.match(error.message, /durable on 2 of 3 voting members/);
      return true;
    });
    // The write itself committed on the majority: it is there, and "majority" writes go on.
    assert.equal(text((await leader.kv.get(utf8("wc"))).record?.value), "v");
    await leader.kv.put(utf8("wc2"), utf8("v"));
    cluster.reconnect(cut.id);
    const healed = await cluster.leader();
    const ack = await healed.kv.withWriteConcern("all").put(utf8("wc"), utf8("v2"));
    assert.ok(ack.revision > 0);
  });

  it("carries the write concern when a follower hands the write to the leader", async () => {
    const leader = await cluster.leader();
    const [through, cut] = cluster.others(leader.id);
    assert.ok(through !== undefined && cut !== undefined);
    const ack = await through.kv.withWriteConcern("all").put(utf8("via"), utf8("1"));
    assert.ok(ack.revision > 0);
    cluster.isolate(cut.id);
    await assert.rejects(through.kv.withWriteConcern("all").put(utf8("via"), utf8("2")), (error: unknown) => {
      assert.ok(error instanceof CairnError && error.is("ERR_WRITE_CONCERN"), String(error));
      assert.deepEqual(error.details, { votersWithEntry: 2, voters: 3 });
      return true;
    });
    cluster.reconnect(cut.id);
    await cluster.leader();
  });

  it("fails the wait with ERR_WRITE_CONCERN when the leader steps down meanwhile", async () => {
    const leader = await cluster.leader();
    const { index } = await leader.group.proposeWithIndex(sweep());
    // A wait for an index no voter has yet: only the leader's step-down (check-quorum, once its
    // followers are cut off) ends it, with the majority the commit proved as the count.
    cluster.isolate(leader.id);
    const outcome = await leader.group.waitReplicatedToAll(index + 1_000, 60_000).then(
      () => "met",
      (error: unknown) => error,
    );
    assert.ok(outcome instanceof NodeError && outcome.code === "ERR_WRITE_CONCERN", String(outcome));
    assert.match(outcome.message, /stopped leading/);
    assert.deepEqual(outcome.voterCount, { withEntry: 2, voters: 3 });
    cluster.reconnect(leader.id);
    await cluster.leader();
  });
});
