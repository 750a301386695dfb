// A follower that lost its durable state (its data directory emptied, or damaged state discarded)
// after acknowledging entries must be refilled by the leader, and must not vote until it is whole.
// Method: a 3-member harness cluster commits entries, one follower restarts with nothing (as a
// runtime that found its state gone restarts it, with PersistedState.stateLost), and the test
// checks what the leader sends it, what it answers to a candidate, and its log afterwards.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AppendResponseMessage,
  groupId,
  logIndex,
  type Message,
  nodeId,
  type PersistedState,
  RawNode,
  term,
} from "../../../src/raft/index.js";
import { Progress } from "../../../src/raft/progress.js";
import {
  deliverTo1,
  entriesWithTerms,
  restartMember1,
  threeVoterBootstrap,
} from "../../raft-harness/fixtures.js";
import { Net } from "../../raft-harness/net.js";

const g = groupId(1);
const bootstrap = threeVoterBootstrap;
const deliver = deliverTo1;

/** Member 1 restarted at term 2 with entries 1..3, plus what the runtime says it lost. */
const member1 = (lost: Partial<PersistedState> = {}): RawNode =>
  restartMember1({
    hardState: { term: term(2), votedFor: null, commitIndex: logIndex(1) },
    entries: [bootstrap, ...entriesWithTerms([1, 2], 2)],
    ...lost,
  });

const rejection = (out: Message[]): AppendResponseMessage | undefined =>
  out.find((m): m is AppendResponseMessage => m.type === "append-response" && m.reject);

/** Leader 2 of term 2 appends after index `prev` (term 2 there), or heartbeats with `commit`. */
const appendAfter = (raw: RawNode, prev: number) =>
  rejection(
    deliver(raw, 2, 2, {
      type: "append",
      prevLogIndex: logIndex(prev),
      prevLogTerm: term(2),
      entries: [],
      commitIndex: logIndex(1),
    }),
  );
const heartbeat = (raw: RawNode, commit: number) =>
  rejection(deliver(raw, 2, 2, { type: "heartbeat", commitIndex: logIndex(commit), readRound: 0 }));

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

describe("a follower reports lost entries only when it knows it lost them", () => {
  it("a lagging follower's rejection is not flagged: the leader may take it for a late answer", () => {
    const r = appendAfter(member1(), 5);
    assert.equal(r?.entriesLost, false);
    assert.equal(r?.hintIndex, 3);
    assert.equal(heartbeat(member1(), 3), undefined, "a heartbeat within its log is not rejected");
  });

  it("a heartbeat's commit past its log (the leader sends at most its match) is answered flagged", () => {
    const r = heartbeat(member1(), 5);
    assert.equal(r?.entriesLost, true);
    assert.equal(r?.index, 5);
    assert.equal(r?.hintIndex, 3, "refill from just past its last entry");
  });

  it("a member recovering from discarded state, or a cut tail, flags every rejection", () => {
    assert.equal(appendAfter(member1({ stateLost: true }), 5)?.entriesLost, true);
    assert.equal(appendAfter(member1({ tailLostIndexMax: logIndex(6) }), 5)?.entriesLost, true);
  });
});

describe("the leader lowers a follower's match only on a flagged rejection", () => {
  it("keeps streaming past a late unflagged rejection, refills after a flagged one", () => {
    const net = new Net({ seed: 5, voters: [1, 2, 3] });
    net.elect(1);
    for (let k = 0; k < 4; k++) net.propose(1, `v${k}`);
    const leader = net.cluster.raw(1);
    const peer3 = () => leader.status().peers.find((p) => p.id === 3);
    const match = peer3()?.matchIndex ?? 0;
    assert.ok(match >= 5 && peer3()?.state === "replicate");
    const reject = (entriesLost: boolean) =>
      leader.step({
        groupId: g,
        from: nodeId(3),
        to: nodeId(1),
        term: term(leader.status().term),
        type: "append-response",
        reject: true,
        index: logIndex(match - 1),
        hintIndex: logIndex(1),
        hintTerm: term(0),
        entriesLost,
      });
    reject(false);
    assert.equal(peer3()?.state, "replicate", "a late answer stopped the stream");
    assert.equal(peer3()?.matchIndex, match);
    reject(true);
    assert.equal(peer3()?.state, "probe");
    assert.equal(peer3()?.matchIndex, 0, "the match stood after a flagged report");
    assert.equal(leader.status().commitIndex >= match, true, "the commit index never goes down");
    // Node 3 still holds everything: the probe from index 1 is answered and streaming resumes.
    net.stabilize();
    net.tickAll(3);
    assert.equal(peer3()?.matchIndex, leader.status().lastIndex);
    assert.equal(peer3()?.state, "replicate");
  });
});

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

describe("a member that lost its state also lost the record of its votes", () => {
  /** Member 1 as the runtime restarts it after discarding its state: nothing, and why. */
  const lost = () =>
    restartMember1({
      hardState: { term: term(0), votedFor: null, commitIndex: logIndex(0) },
      entries: [],
      stateLost: true,
    });
  const askVote = (raw: RawNode, from: number, t: number) =>
    deliver(raw, from, t, {
      type: "vote-request",
      preVote: false,
      lastLogIndex: logIndex(2),
      lastLogTerm: term(4),
      transfer: false,
    }).find((m) => m.type === "vote-response")?.reject;
  /** Leader 2 of term 4 gives member 1 the committed log (entries 1 and 2). */
  const refill = (raw: RawNode) =>
    deliver(raw, 2, 4, {
      type: "append",
      prevLogIndex: logIndex(0),
      prevLogTerm: term(0),
      entries: [bootstrap, { term: term(4), index: logIndex(2), kind: "normal", data: new Uint8Array() }],
      commitIndex: logIndex(2),
    });
  const termAnswer = (raw: RawNode, from: number, t: number) =>
    deliver(raw, from, t, { type: "vote-response", preVote: true, reject: true });

  it("never votes twice in a term it may have voted in before the loss", () => {
    // Before the loss, member 1 voted for member 3 in term 5 (3 campaigned there, cut off from 2).
    const raw = lost();
    // Leader 2 of term 4 gives it the committed log: it is whole, but its old votes are gone.
    refill(raw);
    assert.equal(raw.status().commitIndex, 2);
    assert.equal(raw.status().votesWithheld, true, "votes before its fellow voters' terms are known");
    // It asks every fellow voter for its term (a pre-vote request that cannot win).
    raw.tick();
    const probes = [];
    while (raw.hasReady()) {
      const rd = raw.ready();
      probes.push(...rd.messages.filter((m) => m.type === "vote-request" && m.preVote));
      raw.advance(rd);
    }
    assert.deepEqual(
      probes.map((m) => m.to),
      [2, 3],
    );
    termAnswer(raw, 2, 4);
    // Member 2 lost its leadership and campaigns in term 5. Granting would elect a second leader
    // there: member 3 holds this member's vote of term 5 from before the loss.
    assert.equal(askVote(raw, 2, 5), true, "voted in term 5 again before hearing member 3's term");
    // Member 3 answers with term 5: every term it may have voted in is at most 5.
    termAnswer(raw, 3, 5);
    assert.equal(raw.status().votesWithheld, false, "the fence stands although every voter answered");
    assert.equal(askVote(raw, 2, 5), true, "voted twice in term 5");
    assert.equal(askVote(raw, 2, 6), false, "a later term is a fresh vote");
  });

  it("waits for every fellow voter: a majority's terms do not bound a late candidate's", () => {
    const raw = lost();
    refill(raw);
    termAnswer(raw, 2, 4);
    for (let k = 0; k < 30; k++) raw.tick();
    while (raw.hasReady()) raw.advance(raw.ready());
    assert.equal(raw.status().votesWithheld, true);
    assert.equal(askVote(raw, 2, 5), true);
    assert.equal(raw.status().role, "follower", "it campaigned");
  });
});
