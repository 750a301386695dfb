// The core's features beyond the paper's basic algorithm, each shown through behaviour a cluster's
// user would notice: pre-vote and check-quorum (dissertation §9.6, §6.2), fast backtracking,
// flow control and batching at their limits, membership changes (dissertation §4), leadership
// transfer (§3.10) and ReadIndex (§6.4). In-memory clusters, invariants checked after every step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AppendMessage,
  groupId,
  logIndex,
  type Message,
  nodeId,
  RawNode,
  term,
} from "../../../src/raft/index.js";
import { entryHeaderBytes } from "../../../src/raft/raft-log.js";
import { Prng } from "../../../src/util/prng.js";
import { bytes } from "../../raft-harness/cluster.js";
import { setLog } from "../../raft-harness/fixtures.js";
import { Net } from "../../raft-harness/net.js";

const appends = (msgs: Message[]): AppendMessage[] =>
  msgs.filter((m): m is AppendMessage => m.type === "append");

describe("pre-vote (dissertation §9.6)", () => {
  it("a partitioned node rejoining does not disrupt a healthy leader", () => {
    const net = new Net({ seed: 2, voters: [1, 2, 3], preVote: true });
    net.elect(1);
    net.isolate(3);
    net.tickAll(100);
    assert.equal(net.cluster.raw(3).status().term, 1, "pre-votes fail, so the term never grows");
    net.heal();
    net.tickAll(5);
    assert.equal(net.leader(), 1);
    assert.equal(net.cluster.raw(1).status().term, 1);
  });

  it("without pre-vote the same rejoin forces a new election", () => {
    const net = new Net({ seed: 2, voters: [1, 2, 3], preVote: false, checkQuorum: true });
    net.elect(1);
    net.isolate(3);
    net.tickAll(100);
    assert.ok(net.cluster.raw(3).status().term > 5);
    net.heal();
    net.tickAll(40);
    assert.ok(net.cluster.raw(1).status().term > 1, "the inflated term deposes the leader");
  });

  it("a node that may not campaign still lets its leader's lease run out", () => {
    // Found by simulator seed 352697416 (level 2): node 3 had applied its own removal while the
    // leader re-added it (uncommitted) and then lost its quorum, so node 3's vote was needed. A
    // node outside the voters never campaigns, but it restarted its election clock every timeout
    // anyway: it stayed "in lease" of a long-gone leader, refused every (pre-)vote forever, and no
    // leader was ever elected. A learner is the same kind of node.
    const net = new Net({ seed: 2, voters: [1, 2], learners: [3], preVote: true, checkQuorum: true });
    net.elect(1);
    net.propose(1, "a");
    net.isolate(3);
    net.tick(3, 20);
    for (let k = 0; k < 40; k++) {
      net.tick(3);
      const since = net.cluster.raw(3).status().ticksSinceLeaderContact ?? 0;
      assert.ok(since >= 20, `the leader's lease stays run out (${since} ticks since contact)`);
    }
    const s = net.cluster.raw(3).status();
    assert.equal(s.leaderId, 1);

    // Node 2, now in a configuration where node 3 votes, asks for a pre-vote at a later term.
    net.heal();
    net.cluster.raw(3).step({
      groupId: groupId(1),
      from: nodeId(2),
      to: nodeId(3),
      term: term(s.term + 1),
      type: "vote-request",
      preVote: true,
      lastLogIndex: logIndex(s.lastIndex + 5),
      lastLogTerm: term(s.term),
      transfer: false,
    });
    const answers = net.cluster
      .raw(3)
      .ready()
      .messages.filter((m) => m.type === "vote-response");
    assert.equal(answers.length, 1);
    assert.equal(answers[0]?.type === "vote-response" && answers[0].reject, false, "the pre-vote is granted");
  });

  it("a node refuses a pre-vote while it hears from a leader", () => {
    const net = new Net({ seed: 2, voters: [1, 2, 3], preVote: true });
    net.elect(1);
    net.cluster.raw(3).campaign();
    net.stabilize();
    assert.equal(net.cluster.raw(3).status().role, "follower");
    assert.equal(net.leader(), 1);
    assert.equal(net.cluster.raw(1).status().term, 1);
  });
});

describe("check-quorum (dissertation §6.2)", () => {
  it("a leader that has not heard from a majority within an election timeout steps down", () => {
    const net = new Net({ seed: 3, voters: [1, 2, 3], checkQuorum: true });
    net.elect(1);
    net.isolate(1);
    for (let k = 0; k < 20; k++) {
      net.tick(1);
      net.stabilize();
    }
    assert.equal(net.cluster.raw(1).status().role, "follower");
  });

  it("a leader that hears from a majority stays", () => {
    const net = new Net({ seed: 3, voters: [1, 2, 3], checkQuorum: true });
    net.elect(1);
    net.isolate(3);
    for (let k = 0; k < 30; k++) {
      net.tick(1);
      net.tick(2);
      net.stabilize();
    }
    assert.equal(net.cluster.raw(1).status().role, "leader");
  });
});

describe("replication flow control", () => {
  it("a follower far behind converges in a handful of round trips (fast backtracking)", () => {
    const net = new Net({ seed: 4, voters: [1, 2, 3] });
    // Node 2 holds 100 entries from a stale term 2; the others hold 100 different ones from term 3.
    const stale = [1, ...Array<number>(100).fill(2)];
    const good = [1, ...Array<number>(100).fill(3)];
    setLog(net, 1, good, 3);
    setLog(net, 3, good, 3);
    setLog(net, 2, stale, 3);
    net.elect(1);
    const rejects = net.cluster.sentByType.get("append-response") ?? 0;
    assert.ok(rejects < 8, `${rejects} append answers`);
    assert.equal(net.cluster.raw(2).status().lastIndex, 102);
    assert.equal(net.cluster.raw(2).termAt(101), 3);
  });

  it("batches entries up to appendBytesMax per message, at least one entry each", () => {
    const net = new Net({ seed: 5, voters: [1, 2], appendBytesMax: 100, inflightAppendsMax: 64 });
    net.elect(1);
    const raw = net.cluster.raw(1);
    // 20 payload bytes + 24 of framing: two entries fit in 100 bytes, three do not.
    for (let k = 0; k < 10; k++) raw.propose(bytes("x".repeat(20)));
    raw.propose(bytes("y".repeat(500)));
    net.cluster.processReady(nodeId(1));
    const sent = appends(net.pending.map((e) => e.msg));
    assert.deepEqual(
      sent.map((m) => m.entries.map((e) => e.index)),
      [[3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13]],
    );
    net.stabilize();
    assert.equal(net.cluster.raw(2).status().commitIndex, 13);
  });

  it("keeps at most inflightAppendsMax unacknowledged appends per follower", () => {
    const net = new Net({ seed: 6, voters: [1, 2], appendBytesMax: 1, inflightAppendsMax: 3 });
    net.elect(1);
    const raw = net.cluster.raw(1);
    for (let k = 0; k < 10; k++) raw.propose(bytes(`e${k}`));
    net.cluster.processReady(nodeId(1));
    assert.equal(appends(net.pending.map((e) => e.msg)).length, 3);
    assert.equal(raw.status().peers.find((p) => p.id === 2)?.inflight, 3);
    net.stabilize();
    assert.equal(net.cluster.raw(2).status().commitIndex, 12);
  });

  it("hands out at most applyBytesMax of committed entries per Ready, at least one", () => {
    const raw = new RawNode({
      id: nodeId(1),
      groupId: groupId(1),
      conf: { voters: [nodeId(1)], learners: [] },
      electionTimeoutTicks: 10,
      heartbeatTicks: 1,
      preVote: false,
      checkQuorum: false,
      appendBytesMax: 1 << 20,
      inflightAppendsMax: 4,
      applyBytesMax: 100,
      random: new Prng(1),
    });
    raw.campaign();
    for (let k = 0; k < 6; k++) raw.propose(bytes("x".repeat(20)));
    raw.propose(bytes("y".repeat(300)));
    const batches: number[][] = [];
    for (let k = 0; k < 20 && raw.hasReady(); k++) {
      const rd = raw.ready();
      if (rd.committedEntries.length > 0) batches.push(rd.committedEntries.map((e) => e.index));
      const bytesOut = rd.committedEntries.reduce((sum, e) => sum + e.data.length + entryHeaderBytes, 0);
      assert.ok(rd.committedEntries.length <= 1 || bytesOut <= 100, `${bytesOut} bytes in one Ready`);
      raw.advance(rd);
    }
    assert.deepEqual(batches.flat(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(batches.length >= 4, "the entries were split across Readies");
  });

  it("falls back to probing a follower reported unreachable", () => {
    const net = new Net({ seed: 6, voters: [1, 2, 3] });
    net.elect(1);
    const raw = net.cluster.raw(1);
    assert.equal(raw.status().peers.find((p) => p.id === 2)?.state, "replicate");
    raw.reportUnreachable(nodeId(2));
    assert.equal(raw.status().peers.find((p) => p.id === 2)?.state, "probe");
    // The next append it acknowledges puts it back into optimistic streaming.
    net.propose(1, "x");
    assert.equal(raw.status().peers.find((p) => p.id === 2)?.state, "replicate");
  });

  it("refuses proposals beyond uncommittedBytesMax", () => {
    const net = new Net({ seed: 6, voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(1);
    const raw = net.cluster.raw(1);
    let refused = 0;
    for (let k = 0; k < 5000 && refused === 0; k++) {
      const r = raw.propose(new Uint8Array(64 * 1024));
      if (!r.ok) {
        assert.equal(r.reason, "too-many-uncommitted");
        refused++;
      }
    }
    assert.equal(refused, 1);
  });
});

describe("membership changes (dissertation §4)", () => {
  it("a learner receives the log but never votes or counts toward a commit", () => {
    const net = new Net({ seed: 7, voters: [1, 2], learners: [3] });
    net.elect(1);
    net.propose(1, "a");
    assert.equal(net.cluster.node(3).app.values.get(3), "a");
    net.isolate(2);
    net.propose(1, "b");
    assert.equal(net.cluster.raw(1).status().commitIndex, 3, "leader + learner is not a majority");
    net.cluster.raw(3).campaign();
    assert.equal(net.cluster.raw(3).status().role, "follower", "a learner never campaigns");
  });

  it("adds a learner, then promotes it; one change at a time", () => {
    const net = new Net({ seed: 8, voters: [1, 2, 3] });
    net.elect(1);
    net.addEmptyNode(4);
    const raw = net.cluster.raw(1);
    const r = raw.proposeConfChange({ type: "add-learner", node: nodeId(4) });
    assert.ok(r.ok);
    assert.deepEqual(raw.proposeConfChange({ type: "promote", node: nodeId(4) }), {
      ok: false,
      reason: "conf-change-pending",
    });
    net.stabilize();
    assert.deepEqual(net.cluster.raw(4).status().conf.learners, [4]);
    assert.ok(raw.proposeConfChange({ type: "promote", node: nodeId(4) }).ok);
    net.stabilize();
    assert.deepEqual(net.cluster.raw(4).status().conf.voters, [1, 2, 3, 4]);
    assert.deepEqual(raw.proposeConfChange({ type: "promote", node: nodeId(4) }), {
      ok: false,
      reason: "invalid-conf-change",
      detail: "not-a-learner",
    });
  });

  it("a new leader may not change membership before it commits an entry of its term", () => {
    const net = new Net({ seed: 9, voters: [1, 2, 3] });
    net.filter = (m) => m.type === "vote-request" || m.type === "vote-response";
    net.elect(1);
    assert.deepEqual(net.cluster.raw(1).proposeConfChange({ type: "add-learner", node: nodeId(4) }), {
      ok: false,
      reason: "no-commit-in-term",
    });
    net.filter = undefined;
    net.tickAll(1);
    assert.ok(net.cluster.raw(1).proposeConfChange({ type: "add-learner", node: nodeId(4) }).ok);
  });

  it("a removed leader steps down once its removal commits, and the rest elect a new one", () => {
    const net = new Net({ seed: 10, voters: [1, 2, 3] });
    net.elect(1);
    assert.ok(net.cluster.raw(1).proposeConfChange({ type: "remove", node: nodeId(1) }).ok);
    net.stabilize();
    assert.equal(net.cluster.raw(1).status().role, "follower");
    net.tickAll(40);
    const leader = net.leader();
    assert.ok(leader === 2 || leader === 3);
    assert.equal(net.cluster.raw(1).status().role, "follower", "a non-member never campaigns");
    net.propose(leader, "after");
    assert.equal(net.cluster.raw(leader).status().commitIndex, net.cluster.raw(leader).status().lastIndex);
  });

  it("a leader cut off right after appending its own removal campaigns until the removal commits", () => {
    // Found by simulator seed 1017838 (level 1): the removal reached no one, so node 1 still counts
    // node 3 as a voter and needs its vote, which node 3's longer log refuses. Node 3, its own log
    // saying it is no longer a voter, never campaigned: no leader, ever.
    const net = new Net({ seed: 11, voters: [1, 3], preVote: true, checkQuorum: true });
    net.elect(3);
    net.isolate(3);
    assert.ok(net.cluster.raw(3).proposeConfChange({ type: "remove", node: nodeId(3) }).ok);
    for (let k = 0; k < 40; k++) {
      net.tickAll(1);
      net.stabilize();
    }
    assert.notEqual(net.cluster.raw(3).status().role, "leader", "check-quorum deposed the cut-off leader");
    assert.equal(net.leader(), undefined, "node 1 cannot win without node 3's vote");
    net.heal();
    for (let k = 0; k < 100 && net.leader() !== 1; k++) {
      net.tickAll(1);
      net.stabilize();
    }
    assert.equal(net.leader(), 1, "node 3 commits its removal and node 1 then leads alone");
    assert.deepEqual(net.cluster.raw(1).status().conf.voters, [1]);
    assert.equal(net.cluster.raw(3).status().role, "follower");
    net.propose(1, "after");
    assert.equal(net.cluster.raw(1).status().commitIndex, net.cluster.raw(1).status().lastIndex);
  });
});

describe("leadership transfer (dissertation §3.10)", () => {
  it("brings the target up to date, then it wins at once", () => {
    const net = new Net({ seed: 11, voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    net.propose(1, "a");
    net.heal();
    const r = net.cluster.raw(1).transferLeadership(nodeId(3));
    assert.deepEqual(r, { ok: true });
    assert.deepEqual(net.cluster.raw(1).propose(bytes("x")), { ok: false, reason: "transfer-in-progress" });
    net.stabilize();
    assert.equal(net.leader(), 3);
    assert.equal(net.cluster.raw(3).status().term, 2);
  });

  it("is abandoned when the target does not take over within an election timeout", () => {
    const net = new Net({ seed: 12, voters: [1, 2, 3] });
    net.elect(1);
    net.cluster.crash(3);
    assert.deepEqual(net.cluster.raw(1).transferLeadership(nodeId(3)), { ok: true });
    for (let k = 0; k < 10; k++) {
      net.tick(1);
      net.stabilize();
    }
    assert.equal(net.cluster.raw(1).status().leadTransferee, null);
    assert.ok(net.cluster.raw(1).propose(bytes("x")).ok);
  });
});

describe("status", () => {
  it("reports how long ago a follower heard from its leader, for stale reads", () => {
    const net = new Net({ seed: 17, voters: [1, 2, 3] });
    assert.equal(net.cluster.raw(2).status().ticksSinceLeaderContact, null);
    net.elect(1);
    assert.equal(net.cluster.raw(1).status().ticksSinceLeaderContact, 0);
    assert.equal(net.cluster.raw(2).status().ticksSinceLeaderContact, 0);
    net.isolate(2);
    net.tick(2, 3);
    assert.equal(net.cluster.raw(2).status().ticksSinceLeaderContact, 3);
  });

  it("reports per-peer progress on the leader", () => {
    const net = new Net({ seed: 18, voters: [1, 2, 3], learners: [4] });
    net.elect(1);
    net.propose(1, "a");
    net.tickAll(1);
    const peers = net.cluster.raw(1).status().peers;
    assert.deepEqual(
      peers.map((p) => [p.id, p.voter, p.matchIndex, p.nextIndex, p.state, p.inflight, p.lastContactTick]),
      [
        [1, true, 3, 4, "replicate", 0, 1],
        [2, true, 3, 4, "replicate", 0, 1],
        [3, true, 3, 4, "replicate", 0, 1],
        [4, false, 3, 4, "replicate", 0, 1],
      ],
    );
    assert.deepEqual(net.cluster.raw(2).status().peers, []);
  });
});

describe("ReadIndex (dissertation §6.4)", () => {
  it("serves many reads with one heartbeat round", () => {
    const net = new Net({ seed: 13, voters: [1, 2, 3] });
    net.elect(1);
    const before = net.cluster.sentByType.get("heartbeat") ?? 0;
    for (let k = 0; k < 50; k++) assert.deepEqual(net.cluster.raw(1).readIndex(`r${k}`), { ok: true });
    net.stabilize();
    assert.equal(net.cluster.node(1).readStates.length, 50);
    assert.ok((net.cluster.sentByType.get("heartbeat") ?? 0) - before <= 4, "at most two rounds");
  });

  it("sends no appends for its rounds; an idle leader refreshes each follower every 10 heartbeats", () => {
    const net = new Net({ seed: 16, voters: [1, 2, 3] });
    net.elect(1);
    net.tickAll(10);
    const appendsSent = () => net.cluster.sentByType.get("append") ?? 0;
    // Under a read load: 40 rounds, each a heartbeat to both followers and their responses.
    const beforeReads = appendsSent();
    for (let k = 0; k < 40; k++) {
      assert.deepEqual(net.cluster.raw(1).readIndex(`r${k}`), { ok: true });
      net.stabilize();
    }
    assert.equal(net.cluster.node(1).readStates.length, 40);
    assert.equal(appendsSent() - beforeReads, 0, "read rounds sent appends");
    // Idle, one heartbeat per tick: an (empty) append to each follower once every 10 intervals.
    const beforeIdle = appendsSent();
    net.tickAll(30);
    assert.equal(appendsSent() - beforeIdle, 6);
  });

  it("answers a read forwarded by a follower", () => {
    const net = new Net({ seed: 14, voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, "a");
    assert.deepEqual(net.cluster.raw(2).readIndex("f"), { ok: true });
    net.stabilize();
    assert.deepEqual(net.cluster.node(2).readStates, [{ context: "f", index: 3 }]);
  });

  it("waits until the new leader has committed an entry of its term", () => {
    const net = new Net({ seed: 15, voters: [1, 2, 3] });
    net.filter = (m) => m.type === "vote-request" || m.type === "vote-response";
    net.elect(1);
    net.cluster.raw(1).readIndex("early");
    net.stabilize();
    assert.deepEqual(net.cluster.node(1).readStates, []);
    net.filter = undefined;
    net.tickAll(2);
    assert.deepEqual(net.cluster.node(1).readStates, [{ context: "early", index: 2 }]);
  });

  it("refuses reads beyond readIndexPendingMax and without a known leader", () => {
    const net = new Net({ seed: 16, voters: [1, 2, 3] });
    assert.deepEqual(net.cluster.raw(1).readIndex("x"), {
      ok: false,
      reason: "not-leader",
      leaderHint: null,
    });
    net.elect(1);
    net.isolate(1);
    let refused = 0;
    for (let k = 0; k < 5000; k++) if (!net.cluster.raw(1).readIndex(`r${k}`).ok) refused++;
    assert.equal(refused, 5000 - 4096);
  });
});
