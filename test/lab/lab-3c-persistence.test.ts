// The MIT 6.5840 Raft lab, part 3C (persistence), on the simulated-time harness: crashes lose
// everything but the persisted hard state and log; unreliable networks drop 10% of messages, delay
// the rest up to 27 ms and (long reordering) hold replies back up to 2.2 s. Each test follows its lab
// counterpart; the cluster checks election safety, vote uniqueness and state machine safety
// after every step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Lab, raftElectionTimeoutMs } from "./harness.js";

const next = (lab: Lab, i: number, k: number): number => ((i - 1 + k) % lab.servers) + 1;

/** lab.start1(i) + connect(i). */
function restartAndConnect(lab: Lab, i: number): void {
  lab.restart(i);
  lab.connect(i);
}

describe("6.5840 lab 3C: persistence", () => {
  it("TestPersist13C", () => {
    const lab = new Lab({ servers: 3, seed: 331 });
    lab.one("11", 3, true);
    // Crash and re-start all.
    for (const i of lab.ids()) lab.restart(i);
    for (const i of lab.ids()) {
      lab.disconnect(i);
      lab.connect(i);
    }
    lab.one("12", 3, true);
    const leader1 = lab.checkOneLeader();
    lab.disconnect(leader1);
    restartAndConnect(lab, leader1);
    lab.one("13", 3, true);
    const leader2 = lab.checkOneLeader();
    lab.disconnect(leader2);
    const index14 = lab.one("14", 2, true);
    restartAndConnect(lab, leader2);
    // Wait for leader2 to join before killing i3.
    lab.wait(index14, 3, -1);
    const i3 = next(lab, lab.checkOneLeader(), 1);
    lab.disconnect(i3);
    lab.one("15", 2, true);
    restartAndConnect(lab, i3);
    lab.one("16", 3, true);
  });

  it("TestPersist23C", () => {
    const lab = new Lab({ servers: 5, seed: 332 });
    let index = 1;
    for (let iters = 0; iters < 5; iters++) {
      lab.one(`${10 + index++}`, 5, true);
      const leader1 = lab.checkOneLeader();
      lab.disconnect(next(lab, leader1, 1));
      lab.disconnect(next(lab, leader1, 2));
      lab.one(`${10 + index++}`, 3, true);
      for (const k of [0, 3, 4]) lab.disconnect(next(lab, leader1, k));
      lab.restart(next(lab, leader1, 1));
      lab.restart(next(lab, leader1, 2));
      lab.connect(next(lab, leader1, 1));
      lab.connect(next(lab, leader1, 2));
      lab.sleep(raftElectionTimeoutMs);
      restartAndConnect(lab, next(lab, leader1, 3));
      lab.one(`${10 + index++}`, 3, true);
      lab.connect(next(lab, leader1, 4));
      lab.connect(next(lab, leader1, 0));
    }
    lab.one("1000", 5, true);
  });

  it("TestPersist33C", () => {
    // Partitioned leader and one follower crash, leader restarts.
    const lab = new Lab({ servers: 3, seed: 333 });
    lab.one("101", 3, true);
    const leader = lab.checkOneLeader();
    lab.disconnect(next(lab, leader, 2));
    lab.one("102", 2, true);
    lab.crash(next(lab, leader, 0));
    lab.crash(next(lab, leader, 1));
    lab.connect(next(lab, leader, 2));
    restartAndConnect(lab, next(lab, leader, 0));
    lab.one("103", 2, true);
    restartAndConnect(lab, next(lab, leader, 1));
    lab.one("104", 3, true);
  });

  it("TestFigure83C", () => {
    // Leaders come and go (crash) quickly, so entries of old terms sit uncommitted on some servers:
    // the scenario of the paper's Figure 8.
    const lab = new Lab({ servers: 5, seed: 334 });
    const prng = lab.cluster.prng;
    lab.one(lab.randCmd(), 1, true);
    let nup = 5;
    for (let iters = 0; iters < 1000; iters++) {
      let leader = -1;
      for (const i of lab.ids()) {
        if (lab.isUp(i) && lab.start(i, lab.randCmd()).isLeader) leader = i;
      }
      lab.sleep(prng.chance(100, 1000) ? prng.below(raftElectionTimeoutMs / 2) : prng.below(13));
      if (leader !== -1) {
        lab.crash(leader);
        nup--;
      }
      if (nup < 3) {
        const s = 1 + prng.below(5);
        if (!lab.isUp(s)) {
          restartAndConnect(lab, s);
          nup++;
        }
      }
    }
    for (const i of lab.ids()) if (!lab.isUp(i)) restartAndConnect(lab, i);
    lab.one(lab.randCmd(), 5, true);
  });

  it("TestUnreliableAgree3C", () => {
    const lab = new Lab({ servers: 5, seed: 335, unreliable: true });
    for (let iters = 1; iters < 50; iters++) {
      // The lab runs these four from goroutines; here they run back to back over the same network.
      for (let j = 0; j < 4; j++) lab.one(`${100 * iters + j}`, 1, true);
      lab.one(`${iters}`, 1, true);
    }
    lab.unreliable = false;
    lab.one("100", 5, true);
  });

  it("TestFigure8Unreliable3C", () => {
    const lab = new Lab({ servers: 5, seed: 336, unreliable: true });
    const prng = lab.cluster.prng;
    lab.one(`${prng.below(10000)}`, 1, true);
    let nup = 5;
    for (let iters = 0; iters < 1000; iters++) {
      if (iters === 200) lab.longReordering = true;
      let leader = -1;
      for (const i of lab.ids()) {
        const r = lab.start(i, `${prng.below(10000)}`);
        if (r.isLeader && lab.isConnected(i)) leader = i;
      }
      lab.sleep(prng.chance(100, 1000) ? prng.below(raftElectionTimeoutMs / 2) : prng.below(13));
      if (leader !== -1 && prng.below(1000) < raftElectionTimeoutMs / 2) {
        lab.disconnect(leader);
        nup--;
      }
      if (nup < 3) {
        const s = 1 + prng.below(5);
        if (!lab.isConnected(s)) {
          lab.connect(s);
          nup++;
        }
      }
    }
    for (const i of lab.ids()) lab.connect(i);
    lab.one(`${prng.below(10000)}`, 5, true);
  });

  for (const [name, unreliable, seed] of [
    ["TestReliableChurn3C", false, 337],
    ["TestUnreliableChurn3C", true, 338],
  ] as const) {
    it(name, () => {
      const lab = new Lab({ servers: 5, seed, unreliable });
      const prng = lab.cluster.prng;
      // Three clients keep proposing; each remembers the values it saw committed at its index.
      interface Client {
        nextAt: number;
        pending: { index: number; cmd: string; waits: number[] } | undefined;
        seen: string[];
      }
      const clients: Client[] = [0, 1, 2].map(() => ({ nextAt: 0, pending: undefined, seen: [] }));
      let stopped = false;
      const stepClients = () => {
        clients.forEach((c, me) => {
          if (lab.now < c.nextAt) return;
          if (c.pending === undefined) {
            if (stopped) return;
            const cmd = `${prng.nextU32()}`;
            for (const i of lab.ids()) {
              if (!lab.isUp(i)) continue;
              const r = lab.start(i, cmd);
              if (r.isLeader) {
                c.pending = { index: r.index, cmd, waits: [10, 20, 50, 100, 200] };
                break;
              }
            }
            if (c.pending === undefined) c.nextAt = lab.now + 79 + me * 17;
            return;
          }
          const { count, cmd } = lab.nCommitted(c.pending.index);
          if (count > 0) {
            if (cmd === c.pending.cmd) c.seen.push(cmd);
            c.pending = undefined;
            return;
          }
          const wait = c.pending.waits.shift();
          if (wait === undefined) c.pending = undefined;
          else c.nextAt = lab.now + wait;
        });
      };
      const run = (ms: number) => {
        const until = lab.now + ms;
        while (lab.now < until) {
          stepClients();
          lab.sleep(Math.min(5, until - lab.now));
        }
      };
      for (let iters = 0; iters < 20; iters++) {
        if (prng.below(1000) < 200) lab.disconnect(1 + prng.below(5));
        if (prng.below(1000) < 500) {
          const i = 1 + prng.below(5);
          if (!lab.isUp(i)) lab.restart(i);
          lab.connect(i);
        }
        if (prng.below(1000) < 200) {
          const i = 1 + prng.below(5);
          if (lab.isUp(i)) lab.crash(i);
        }
        run((raftElectionTimeoutMs * 7) / 10);
      }
      run(raftElectionTimeoutMs);
      lab.unreliable = false;
      for (const i of lab.ids()) {
        if (!lab.isUp(i)) lab.restart(i);
        lab.connect(i);
      }
      stopped = true;
      run(500);
      const lastIndex = lab.one(`${prng.nextU32()}`, 5, true);
      const really = new Set<string>();
      for (let index = 1; index <= lastIndex; index++) {
        // Skip the bootstrap configuration entry and leaders' no-ops: they carry no command.
        const applied = lab.cluster.appliedAt.get(index);
        if (applied === undefined || applied.kind !== "normal" || applied.data === "") continue;
        const v = lab.wait(index, 5, -1);
        if (v !== undefined) really.add(v);
      }
      const seen = clients.flatMap((c) => c.seen);
      assert.ok(seen.length > 0, "no client made progress");
      for (const v of seen) assert.ok(really.has(v), `didn't find a value ${v}`);
    });
  }
});
