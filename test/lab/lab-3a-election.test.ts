// The MIT 6.5840 Raft lab, part 3A (leader election), on the simulated-time harness: each test
// follows its lab counterpart step by step; ticks are 100 ms, heartbeats at most 10 per second, and
// an election must finish within 5 s of simulated time.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Lab, raftElectionTimeoutMs } from "./harness.js";

const next = (lab: Lab, i: number, k: number): number => ((i - 1 + k) % lab.servers) + 1;

describe("6.5840 lab 3A: leader election", () => {
  it("TestInitialElection3A", () => {
    const lab = new Lab({ servers: 3, seed: 301 });
    lab.checkOneLeader();
    assert.ok(lab.now <= 5000, `first leader after ${lab.now} ms`);
    lab.sleep(50);
    const term1 = lab.checkTerms();
    assert.ok(term1 >= 1, "term is 0, but election seems to have happened");
    // Does the leader+term stay the same if there is no network failure?
    const heartbeats0 = lab.cluster.sentByType.get("heartbeat") ?? 0;
    lab.sleep(2 * raftElectionTimeoutMs);
    assert.equal(lab.checkTerms(), term1, "term changed even though there were no failures");
    // The lab allows at most 10 heartbeats per second (to each of the 2 followers).
    const perSecond = ((lab.cluster.sentByType.get("heartbeat") ?? 0) - heartbeats0) / 2 / 2;
    assert.ok(perSecond <= 10, `${perSecond} heartbeats per second per follower`);
    lab.checkOneLeader();
  });

  it("TestReElection3A", () => {
    const lab = new Lab({ servers: 3, seed: 302 });
    const leader1 = lab.checkOneLeader();
    // If the leader disconnects, a new one should be elected within 5 s.
    lab.disconnect(leader1);
    let t0 = lab.now;
    lab.checkOneLeader();
    assert.ok(lab.now - t0 <= 5000, `re-election took ${lab.now - t0} ms`);
    // The old leader rejoining must not disturb the new one.
    lab.connect(leader1);
    const leader2 = lab.checkOneLeader();
    // No quorum: no leader.
    lab.disconnect(leader2);
    lab.disconnect(next(lab, leader2, 1));
    lab.sleep(2 * raftElectionTimeoutMs);
    lab.checkNoLeader();
    // A quorum arises: it elects a leader.
    lab.connect(next(lab, leader2, 1));
    t0 = lab.now;
    lab.checkOneLeader();
    assert.ok(lab.now - t0 <= 5000, `re-election took ${lab.now - t0} ms`);
    lab.connect(leader2);
    lab.checkOneLeader();
  });

  it("TestManyElections3A", () => {
    const lab = new Lab({ servers: 7, seed: 303 });
    lab.checkOneLeader();
    const prng = lab.cluster.prng;
    for (let ii = 1; ii < 10; ii++) {
      const cut = [1 + prng.below(7), 1 + prng.below(7), 1 + prng.below(7)];
      for (const i of cut) lab.disconnect(i);
      // Either the current leader should still be alive, or the remaining four should elect one.
      lab.checkOneLeader();
      for (const i of cut) lab.connect(i);
    }
    lab.checkOneLeader();
  });
});
