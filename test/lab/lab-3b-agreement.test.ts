// The MIT 6.5840 Raft lab, part 3B (log agreement), on the simulated-time harness. Each test follows
// its lab counterpart. Index checks are adapted: Cairn's log starts with the bootstrap configuration
// entry and every new leader appends a no-op, so commands do not sit at 1, 2, 3 ... as in the lab.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Lab, raftElectionTimeoutMs } from "./harness.js";

const next = (lab: Lab, i: number, k: number): number => ((i - 1 + k) % lab.servers) + 1;

/** Whether any server applied `cmd`. */
function appliedAnywhere(lab: Lab, cmd: string): boolean {
  return [...lab.cluster.nodes.values()].some((n) => [...n.app.values.values()].includes(cmd));
}

describe("6.5840 lab 3B: agreement", () => {
  it("TestBasicAgree3B", () => {
    const lab = new Lab({ servers: 3, seed: 311 });
    let last = 0;
    for (let k = 1; k <= 3; k++) {
      assert.equal(lab.nCommitted(lab.maxIndex() + 1).count, 0, "some have committed before Start()");
      const index = lab.one(`${k * 100}`, 3, false);
      assert.ok(index > last, `got index ${index} after ${last}`);
      last = index;
    }
  });

  it("TestRPCBytes3B", () => {
    const lab = new Lab({ servers: 3, seed: 312 });
    lab.one("99", 3, false);
    const bytes0 = lab.rpcBytes;
    let sent = 0;
    for (let k = 0; k < 10; k++) {
      const cmd = `${k}`.padEnd(5000, "x");
      lab.one(cmd, 3, false);
      sent += cmd.length;
    }
    const got = lab.rpcBytes - bytes0;
    assert.ok(got <= 3 * sent + 50_000, `too many RPC bytes; got ${got}, expected ${3 * sent}`);
  });

  it("TestFollowerFailure3B", () => {
    const lab = new Lab({ servers: 3, seed: 313 });
    lab.one("101", 3, false);
    const leader1 = lab.checkOneLeader();
    lab.disconnect(next(lab, leader1, 1));
    // The leader and remaining follower should be able to agree despite the disconnected follower.
    lab.one("102", 2, false);
    lab.sleep(raftElectionTimeoutMs);
    lab.one("103", 2, false);
    // Disconnect the remaining follower(s).
    const leader2 = lab.checkOneLeader();
    lab.disconnect(next(lab, leader2, 1));
    lab.disconnect(next(lab, leader2, 2));
    const r = lab.start(leader2, "104");
    assert.ok(r.isLeader, "leader rejected Start()");
    lab.sleep(2 * raftElectionTimeoutMs);
    assert.equal(lab.nCommitted(r.index).count, 0, "committed but no majority");
  });

  it("TestLeaderFailure3B", () => {
    const lab = new Lab({ servers: 3, seed: 314 });
    lab.one("101", 3, false);
    const leader1 = lab.checkOneLeader();
    lab.disconnect(leader1);
    // The remaining followers should elect a new leader.
    lab.one("102", 2, false);
    lab.sleep(raftElectionTimeoutMs);
    lab.one("103", 2, false);
    const leader2 = lab.checkOneLeader();
    lab.disconnect(leader2);
    // Submit a command to each server.
    for (const i of lab.ids()) lab.start(i, "104");
    lab.sleep(2 * raftElectionTimeoutMs);
    assert.equal(appliedAnywhere(lab, "104"), false, "104 committed but no majority");
  });

  it("TestFailAgree3B", () => {
    const lab = new Lab({ servers: 3, seed: 315 });
    lab.one("101", 3, false);
    const leader = lab.checkOneLeader();
    lab.disconnect(next(lab, leader, 1));
    lab.one("102", 2, false);
    lab.one("103", 2, false);
    lab.sleep(raftElectionTimeoutMs);
    lab.one("104", 2, false);
    lab.one("105", 2, false);
    // The disconnected follower rejoins and must catch up.
    lab.connect(next(lab, leader, 1));
    lab.one("106", 3, true);
    lab.sleep(raftElectionTimeoutMs);
    lab.one("107", 3, true);
  });

  it("TestFailNoAgree3B", () => {
    const lab = new Lab({ servers: 5, seed: 316 });
    lab.one("10", 5, false);
    // Three of five followers disconnect.
    const leader = lab.checkOneLeader();
    for (const k of [1, 2, 3]) lab.disconnect(next(lab, leader, k));
    const r = lab.start(leader, "20");
    assert.ok(r.isLeader, "leader rejected Start()");
    lab.sleep(2 * raftElectionTimeoutMs);
    assert.equal(lab.nCommitted(r.index).count, 0, "committed but no majority");
    for (const k of [1, 2, 3]) lab.connect(next(lab, leader, k));
    // The disconnected majority may have chosen a leader from among their own ranks, forgetting
    // index r.index; either way the next command lands right after it (plus a new leader's no-op).
    const leader2 = lab.checkOneLeader();
    const r2 = lab.start(leader2, "30");
    assert.ok(r2.isLeader, "leader2 rejected Start()");
    assert.ok(r2.index >= r.index && r2.index <= r.index + 2, `unexpected index ${r2.index}`);
    lab.one("1000", 5, true);
  });

  it("TestConcurrentStarts3B", () => {
    const lab = new Lab({ servers: 3, seed: 317 });
    let success = false;
    for (let attempt = 0; attempt < 5 && !success; attempt++) {
      if (attempt > 0) lab.sleep(3000);
      const leader = lab.checkOneLeader();
      const first = lab.start(leader, "1");
      if (!first.isLeader) continue;
      // Five Start()s at the same simulated instant: they share one Ready, like concurrent calls.
      const starts = [0, 1, 2, 3, 4].map((i) => ({ i, r: lab.start(leader, `${100 + i}`) }));
      if (starts.some((s) => !s.r.isLeader || s.r.term !== first.term)) continue;
      const got: string[] = [];
      let termChanged = false;
      for (const s of starts) {
        const cmd = lab.wait(s.r.index, 3, first.term);
        if (cmd === undefined) termChanged = true;
        else got.push(cmd);
      }
      if (termChanged) continue;
      assert.deepEqual(got.sort(), ["100", "101", "102", "103", "104"]);
      success = true;
    }
    assert.ok(success, "term changed too often");
  });

  it("TestRejoin3B", () => {
    const lab = new Lab({ servers: 3, seed: 318 });
    lab.one("101", 3, true);
    // The leader network failure.
    const leader1 = lab.checkOneLeader();
    lab.disconnect(leader1);
    // Make the old leader try to agree on some entries.
    lab.start(leader1, "102");
    lab.start(leader1, "103");
    lab.start(leader1, "104");
    // The new leader commits, also for index=2.
    lab.one("103", 2, true);
    // New leader network failure; the old leader connects again.
    const leader2 = lab.checkOneLeader();
    lab.disconnect(leader2);
    lab.connect(leader1);
    lab.one("104", 2, true);
    // All together now.
    lab.connect(leader2);
    lab.one("105", 3, true);
    assert.equal(appliedAnywhere(lab, "102"), false, "the old leader's uncommitted entries are gone");
  });

  it("TestBackup3B", () => {
    const lab = new Lab({ servers: 5, seed: 319 });
    lab.one(lab.randCmd(), 5, true);
    // Put the leader and one follower in a partition.
    const leader1 = lab.checkOneLeader();
    for (const k of [2, 3, 4]) lab.disconnect(next(lab, leader1, k));
    // Submit lots of commands that will not commit.
    for (let i = 0; i < 50; i++) lab.start(leader1, lab.randCmd());
    lab.sleep(raftElectionTimeoutMs / 2);
    lab.disconnect(next(lab, leader1, 0));
    lab.disconnect(next(lab, leader1, 1));
    // Allow the other partition to recover.
    for (const k of [2, 3, 4]) lab.connect(next(lab, leader1, k));
    // Lots of successful commands to the new group.
    for (let i = 0; i < 50; i++) lab.one(lab.randCmd(), 3, true);
    // Now another partitioned leader and one follower.
    const leader2 = lab.checkOneLeader();
    let other = next(lab, leader1, 2);
    if (leader2 === other) other = next(lab, leader2, 1);
    lab.disconnect(other);
    // Lots more commands that will not commit.
    for (let i = 0; i < 50; i++) lab.start(leader2, lab.randCmd());
    lab.sleep(raftElectionTimeoutMs / 2);
    // Bring the original leader back to life.
    for (const i of lab.ids()) lab.disconnect(i);
    lab.connect(next(lab, leader1, 0));
    lab.connect(next(lab, leader1, 1));
    lab.connect(other);
    // Lots of successful commands to the new group.
    for (let i = 0; i < 50; i++) lab.one(lab.randCmd(), 3, true);
    // Now everyone.
    for (const i of lab.ids()) lab.connect(i);
    lab.one(lab.randCmd(), 5, true);
  });

  it("TestCount3B", () => {
    const lab = new Lab({ servers: 3, seed: 320 });
    lab.checkOneLeader();
    let total1 = lab.rpcCount;
    assert.ok(total1 <= 30 && total1 >= 1, `too many or few RPCs (${total1}) to elect initial leader`);
    let total2 = 0;
    let success = false;
    for (let attempt = 0; attempt < 5 && !success; attempt++) {
      if (attempt > 0) lab.sleep(3000);
      const leader = lab.checkOneLeader();
      total1 = lab.rpcCount;
      const iters = 10;
      const first = lab.start(leader, "1");
      if (!first.isLeader) continue;
      const cmds: string[] = [];
      let ok = true;
      for (let i = 1; i < iters + 2; i++) {
        const x = lab.randCmd();
        cmds.push(x);
        const r = lab.start(leader, x);
        if (!r.isLeader || r.term !== first.term) ok = false;
        else assert.equal(r.index, first.index + i, "Start() failed");
      }
      if (!ok) continue;
      for (let i = 1; i < iters + 1 && ok; i++) {
        const cmd = lab.wait(first.index + i, 3, first.term);
        if (cmd === undefined) ok = false;
        else assert.equal(cmd, cmds[i - 1], "wrong value committed");
      }
      if (!ok || lab.ids().some((j) => lab.state(j).term !== first.term)) continue;
      total2 = lab.rpcCount;
      assert.ok(
        total2 - total1 <= (iters + 1 + 3) * 3,
        `too many RPCs (${total2 - total1}) for ${iters} entries`,
      );
      success = true;
    }
    assert.ok(success, "term changed too often");
    lab.sleep(raftElectionTimeoutMs);
    const total3 = lab.rpcCount;
    assert.ok(total3 - total2 <= 3 * 20, `too many RPCs (${total3 - total2}) for 1 second of idleness`);
  });
});
