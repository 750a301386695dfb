// The MIT 6.5840 Raft lab, part 3D (log compaction), on the simulated-time harness: every server
// snapshots its state machine every 10 applied entries (the lab's SnapShotInterval) and compacts its
// log; lagging or restarted servers must catch up through InstallSnapshot. Each test follows its lab
// counterpart, including the bound on the persisted log size.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { entryHeaderBytes } from "../../src/raft/raft-log.js";
import { Lab } from "./harness.js";

const snapshotInterval = 10;
/** The lab's MAXLOGSIZE: the persisted Raft state must stay below it. */
const logBytesMax = 2000;

const next = (lab: Lab, i: number, k: number): number => ((i - 1 + k) % lab.servers) + 1;

/** The bytes of persisted log (entries not yet covered by a snapshot) on the largest server. */
function logSize(lab: Lab): number {
  let max = 0;
  for (const n of lab.cluster.nodes.values()) {
    const bytes = n.disk.entries.reduce((s, e) => s + e.data.length + entryHeaderBytes, 0);
    max = Math.max(max, bytes);
  }
  return max;
}

function snapCommon(seed: number, disconnect: boolean, reliable: boolean, crash: boolean): Lab {
  const lab = new Lab({ servers: 3, seed, unreliable: !reliable, snapshotEvery: snapshotInterval });
  const prng = lab.cluster.prng;
  lab.one(lab.randCmd(), 3, true);
  let leader1 = lab.checkOneLeader();
  for (let i = 0; i < 30; i++) {
    let victim = next(lab, leader1, 1);
    let sender = leader1;
    if (i % 3 === 1) {
      sender = next(lab, leader1, 1);
      victim = leader1;
    }
    if (disconnect) {
      lab.disconnect(victim);
      lab.one(lab.randCmd(), 2, true);
    }
    if (crash) {
      lab.crash(victim);
      lab.one(lab.randCmd(), 2, true);
    }
    // Perhaps send enough to get a snapshot.
    const nn = snapshotInterval / 2 + prng.below(snapshotInterval);
    for (let k = 0; k < nn; k++) lab.start(sender, lab.randCmd());
    // Let the appliers catch up with the Start()s.
    lab.one(lab.randCmd(), disconnect || crash ? 2 : 3, true);
    assert.ok(logSize(lab) < logBytesMax, `log size too large: ${logSize(lab)}`);
    if (disconnect) {
      // Reconnect a follower, who may be behind and need to receive a snapshot to catch up.
      lab.connect(victim);
      lab.one(lab.randCmd(), 3, true);
      leader1 = lab.checkOneLeader();
    }
    if (crash) {
      lab.restart(victim);
      lab.connect(victim);
      lab.one(lab.randCmd(), 3, true);
      leader1 = lab.checkOneLeader();
    }
  }
  return lab;
}

describe("6.5840 lab 3D: snapshots", () => {
  it("TestSnapshotBasic3D", () => {
    snapCommon(341, false, true, false);
  });

  it("TestSnapshotInstall3D", () => {
    const lab = snapCommon(342, true, true, false);
    assert.ok((lab.cluster.sentByType.get("snapshot") ?? 0) > 0, "no snapshot was ever installed");
  });

  it("TestSnapshotInstallUnreliable3D", () => {
    snapCommon(343, true, false, false);
  });

  it("TestSnapshotInstallCrash3D", () => {
    snapCommon(344, false, true, true);
  });

  it("TestSnapshotInstallUnCrash3D", () => {
    snapCommon(345, false, false, true);
  });

  it("TestSnapshotAllCrash3D", () => {
    // Crash and restart all servers; the index must not go backwards.
    const lab = new Lab({ servers: 3, seed: 346, snapshotEvery: snapshotInterval });
    const prng = lab.cluster.prng;
    lab.one(lab.randCmd(), 3, true);
    for (let i = 0; i < 5; i++) {
      const nn = snapshotInterval / 2 + prng.below(snapshotInterval);
      for (let k = 0; k < nn; k++) lab.one(lab.randCmd(), 3, true);
      const index1 = lab.one(lab.randCmd(), 3, true);
      for (const s of lab.ids()) lab.crash(s);
      for (const s of lab.ids()) {
        lab.restart(s);
        lab.connect(s);
      }
      const index2 = lab.one(lab.randCmd(), 3, true);
      assert.ok(index2 >= index1 + 1, `index decreased from ${index1} to ${index2}`);
    }
  });

  it("TestSnapshotInit3D", () => {
    // A server restarted from a snapshot must start from it, not from the beginning of the log.
    const lab = new Lab({ servers: 3, seed: 347, snapshotEvery: snapshotInterval });
    lab.one(lab.randCmd(), 3, true);
    for (let k = 0; k < snapshotInterval + 1; k++) lab.one(lab.randCmd(), 1, true);
    for (const s of lab.ids()) lab.crash(s);
    for (const s of lab.ids()) {
      lab.restart(s);
      lab.connect(s);
    }
    // A single op, to get something to be written back to persistent storage.
    lab.one(lab.randCmd(), 1, true);
    for (const s of lab.ids()) lab.crash(s);
    for (const s of lab.ids()) {
      lab.restart(s);
      lab.connect(s);
    }
    // Do another op to trigger a potential bug.
    lab.one(lab.randCmd(), 3, true);
    for (const n of lab.cluster.nodes.values())
      assert.ok(n.disk.snapshot !== undefined, `node ${n.id} has no snapshot`);
  });
});
