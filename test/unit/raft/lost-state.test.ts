// A follower that lost its durable state (its data directory emptied, or damaged state discarded)
// after acknowledging entries must be refilled by the leader, and must not vote until it is whole.
// Method: a 3-member harness cluster commits entries, one follower restarts with nothing (as a
// runtime that found its state gone restarts it, with PersistedState.stateLost), and the test
// checks what the leader sends it, what it answers to a candidate, and its log afterwards.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { logIndex, nodeId, RawNode, term } from "../../../src/raft/index.js";
import { Progress } from "../../../src/raft/progress.js";
import { Net } from "../../raft-harness/net.js";

/** Empties member `id`'s disk and restarts it: it comes back as a brand-new member. */
function wipeAndRestart(net: Net, id: number): void {
  const n = net.cluster.node(id);
  net.cluster.crash(id);
  n.disk.entries = [];
  n.disk.snapshot = undefined;
  n.disk.hardState = { term: term(0), votedFor: null, commitIndex: logIndex(0) };
  n.disk.written = false;
  net.cluster.restart(id);
}

describe("a follower that lost its state", () => {
  it("Progress: a rejection of the matched index flagged entriesLost forgets the match", () => {
    const p = new Progress(logIndex(11), 4);
    p.maybeUpdate(logIndex(10));
    p.becomeProbe();
    assert.equal(p.nextIndex, 11);
    p.sentAppend(0, logIndex(10));
    assert.equal(p.maybeDecrTo(logIndex(10), logIndex(1), false), false, "a late answer, unflagged");
    assert.equal(p.matchIndex, 10);
    assert.equal(p.maybeDecrTo(logIndex(10), logIndex(1), true), true);
    assert.equal(p.matchIndex, 0, "the follower no longer holds what it acknowledged");
    assert.equal(p.nextIndex, 2);
  });

  it("is refilled by the leader (entries, or a snapshot when the log is compacted)", () => {
    for (const compacted of [false, true]) {
      const net = new Net({ seed: 3, voters: [1, 2, 3] });
      net.elect(1);
      for (let k = 0; k < 5; k++) net.propose(1, `v${k}`);
      const leaderLast = net.cluster.raw(1).status().lastIndex;
      if (compacted) assert.ok(net.cluster.compact(1, logIndex(leaderLast)));
      wipeAndRestart(net, 3);
      assert.equal(net.cluster.raw(3).status().lastIndex, 1, "only its bootstrap entry");
      // Heartbeats make the follower answer; it must get everything back within a few rounds.
      for (let round = 0; round < 20 && net.cluster.raw(3).status().commitIndex < leaderLast; round++)
        net.tickAll(1);
      const s = net.cluster.raw(3).status();
      assert.ok(s.commitIndex >= leaderLast, `follower at ${s.commitIndex}, leader at ${leaderLast}`);
      net.cluster.checkLogMatching();
    }
  });

  it("withholds its vote until a leader of its term gave it the committed log", () => {
    const net = new Net({ seed: 4, voters: [1, 2, 3] });
    net.elect(1);
    for (let k = 0; k < 3; k++) net.propose(1, `v${k}`);
    const n3 = net.cluster.node(3);
    wipeAndRestart(net, 3);
    net.cluster.crash(3);
    // What the runtime hands the core when it found the member's state gone: nothing, and why.
    n3.raw = new RawNode(net.cluster.config(n3.id, { voters: [1, 2, 3].map(nodeId), learners: [] }), {
      hardState: { term: term(0), votedFor: null, commitIndex: logIndex(0) },
      entries: [],
      stateLost: true,
    });
    assert.equal(n3.raw.status().votesWithheld, true);
    // Node 2 (missing nothing) campaigns while the leader is cut off: node 3 must refuse it.
    net.isolate(1);
    net.cluster.raw(2).campaign();
    net.stabilize();
    assert.notEqual(net.cluster.raw(2).status().role, "leader", "a member that lost its state voted");
    net.heal();
    for (let round = 0; round < 40 && net.cluster.raw(3).status().votesWithheld; round++) net.tickAll(1);
    assert.equal(net.cluster.raw(3).status().votesWithheld, false, "whole again after catching up");
    net.cluster.checkLogMatching();
  });
});
