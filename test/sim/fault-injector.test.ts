// The fault injector: every event of a generated schedule fires at its time, node faults reach the
// harness and network faults reach the SimNetwork, which ends fully connected after the safety phase;
// aimed events wait for their moment of a scripted leader, strike it, and later events on the same
// label follow it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../src/util/prng.js";
import {
  atLeaderMoment,
  type FaultTarget,
  injectFaults,
  type LeaderView,
  quorumIndex,
} from "./fault-injector.js";
import { type FaultEvent, type FaultSchedule, generateFaultSchedule } from "./fault-schedule.js";
import { Scheduler } from "./scheduler.js";
import { SimNetwork } from "./sim-network.js";

function network(scheduler: Scheduler): SimNetwork<string> {
  return new SimNetwork<string>(
    scheduler,
    new Prng(1),
    [1, 2, 3, 4, 5],
    {
      latencyMinMs: 1,
      latencyMaxMs: 1,
      loss: [0, 1],
      duplicate: [0, 1],
      reorder: [0, 1],
      reorderExtraMaxMs: 0,
      fifo: true,
      inflightMax: 100,
    },
    () => {},
  );
}

/** A harness that records calls and reports whatever leader the test sets. */
function recordingTarget(scheduler: Scheduler) {
  const calls: string[] = [];
  let leader: LeaderView | undefined;
  const target: FaultTarget = {
    crash: (n) => calls.push(`crash ${n}@${scheduler.nowMs}`),
    restart: (n) => calls.push(`restart ${n}@${scheduler.nowMs}`),
    setDiskExtraLatency: (n, ms) => calls.push(`disk ${n} +${ms}@${scheduler.nowMs}`),
    requestRemoveMember: (n) => calls.push(`remove ${n}@${scheduler.nowMs}`),
    requestAddMember: (n) => calls.push(`add ${n}@${scheduler.nowMs}`),
    requestLeadershipTransfer: (n) => calls.push(`transfer ${n}@${scheduler.nowMs}`),
    leaderView: () => leader,
  };
  return {
    calls,
    target,
    setLeader: (view: LeaderView | undefined) => {
      leader = view;
    },
  };
}

const view = (node: number, overrides: Partial<LeaderView> = {}): LeaderView => ({
  node,
  term: 5,
  lastIndex: 20,
  quorumIndex: 20,
  quorumTerm: 5,
  commitAtElection: 10,
  ...overrides,
});

const schedule = (events: FaultEvent[], safetyEndMs = 1_000): FaultSchedule => ({
  events,
  safetyEndMs,
  livenessEndMs: safetyEndMs + 100,
});

describe("injectFaults", () => {
  it("plays a schedule onto the network and the harness at the scheduled times", () => {
    const scheduler = new Scheduler();
    const net = network(scheduler);
    const { calls, target } = recordingTarget(scheduler);
    const generated = generateFaultSchedule(4, {
      clusterSize: 5,
      safetyPhaseMs: 20_000,
      livenessPhaseMs: 1_000,
      gapMinMs: 50,
      gapMaxMs: 300,
      slowDiskExtraMinMs: 5,
      slowDiskExtraMaxMs: 50,
      aimedShare: [0, 1],
      weights: { switch: 0, "leader-churn": 0 },
    });
    const fired: FaultEvent[] = [];
    const topologies: string[] = [];
    injectFaults(scheduler, generated, net, target, (e) => {
      assert.equal(scheduler.nowMs, e.atMs);
      fired.push(e);
    });
    // Watch the topology right after each network event.
    for (const e of generated.events) {
      if (
        e.kind === "partition" ||
        e.kind === "isolate" ||
        e.kind === "bridge" ||
        e.kind === "partition-one-way"
      ) {
        scheduler.at(e.atMs, () => topologies.push(net.describeTopology()));
      }
    }
    scheduler.runUntil(generated.livenessEndMs);
    assert.deepEqual(fired, generated.events);
    const nodeEvents = generated.events.filter((e) =>
      [
        "crash",
        "restart",
        "slow-disk",
        "disk-normal",
        "remove-member",
        "add-member",
        "transfer-leadership",
      ].includes(e.kind),
    );
    assert.equal(calls.length, nodeEvents.length);
    assert.ok(calls.some((c) => c.startsWith("crash")) && calls.some((c) => c.startsWith("disk")));
    assert.ok(topologies.length > 0 && topologies.every((t) => t !== "fully connected"));
    assert.equal(net.describeTopology(), "fully connected");
  });

  it("holds an aimed crash until the leader has unreplicated entries, then crashes the leader", () => {
    const scheduler = new Scheduler();
    const { calls, target, setLeader } = recordingTarget(scheduler);
    const injector = injectFaults(
      scheduler,
      schedule([
        { kind: "crash", atMs: 100, node: 2, aim: { moment: "unreplicated", waitMs: 400 } },
        { kind: "restart", atMs: 500, node: 2 },
      ]),
      network(scheduler),
      target,
    );
    scheduler.afterEvent = () => injector.poll();
    setLeader(view(4));
    scheduler.at(150, () => setLeader(view(4, { lastIndex: 21 })));
    scheduler.runUntil(1_100);
    // The crash waited for its moment, hit node 4 (the leader), and the restart of label 2 follows it.
    assert.deepEqual(calls, ["crash 4@150", "restart 4@500"]);
    assert.equal(injector.fired[0]?.note, "at leader 4");
    assert.equal(injector.fired[0]?.firedMs, 150);
  });

  it("fires an aimed event when its wait is over and its moment never came, later events after it", () => {
    const scheduler = new Scheduler();
    const { calls, target, setLeader } = recordingTarget(scheduler);
    const injector = injectFaults(
      scheduler,
      schedule([
        { kind: "isolate", atMs: 100, node: 3, aim: { moment: "old-term-quorum", waitMs: 200 } },
        { kind: "heal", atMs: 250 },
        { kind: "crash", atMs: 400, node: 1 },
        { kind: "restart", atMs: 600, node: 1 },
      ]),
      network(scheduler),
      target,
    );
    scheduler.afterEvent = () => injector.poll();
    setLeader(view(1));
    scheduler.runUntil(1_100);
    // At 300 the isolation fired on the leader (label 3 now stands for node 1, label 1 for node 3),
    // and the heal due at 250 right after it.
    assert.deepEqual(
      injector.fired.map((f) => [f.resolved.kind, f.firedMs]),
      [
        ["isolate", 300],
        ["heal", 300],
        ["crash", 400],
        ["restart", 600],
      ],
    );
    assert.deepEqual(injector.fired[0]?.resolved, {
      kind: "isolate",
      atMs: 100,
      node: 1,
      aim: { moment: "old-term-quorum", waitMs: 200 },
    });
    assert.deepEqual(calls, ["crash 3@400", "restart 3@600"]);
  });

  it("leaves the labels alone when the leader is not in the same state as the aimed node", () => {
    const scheduler = new Scheduler();
    const { calls, target, setLeader } = recordingTarget(scheduler);
    const injector = injectFaults(
      scheduler,
      schedule([
        { kind: "slow-disk", atMs: 50, node: 4, extraLatencyMs: 10 },
        { kind: "crash", atMs: 100, node: 2, aim: { moment: "now", waitMs: 0 } },
      ]),
      network(scheduler),
      target,
    );
    scheduler.afterEvent = () => injector.poll();
    setLeader(view(4));
    scheduler.runUntil(1_100);
    assert.deepEqual(calls, ["disk 4 +10@50", "crash 2@100"]);
    assert.equal(injector.fired[1]?.note, "leader 4 is not interchangeable");
  });

  it("puts the leader on the cut-off side of an aimed partition", () => {
    const scheduler = new Scheduler();
    const net = network(scheduler);
    const { target, setLeader } = recordingTarget(scheduler);
    const injector = injectFaults(
      scheduler,
      schedule([
        {
          kind: "partition",
          atMs: 100,
          minority: [1, 2],
          majority: [3, 4, 5],
          aim: { moment: "fresh", waitMs: 50 },
        },
      ]),
      net,
      target,
    );
    scheduler.afterEvent = () => injector.poll();
    setLeader(view(5, { quorumTerm: 4 }));
    scheduler.runUntil(200);
    const fired = injector.fired[0]?.resolved;
    assert.ok(fired?.kind === "partition");
    assert.deepEqual([...fired.minority].sort(), [2, 5]);
    assert.deepEqual([...fired.majority].sort(), [1, 3, 4]);
  });
});

describe("leader moments", () => {
  it("finds the index a majority holds", () => {
    assert.equal(quorumIndex([5, 3, 4]), 4);
    assert.equal(quorumIndex([9, 0, 0, 7, 7]), 7);
    assert.equal(quorumIndex([3]), 3);
    assert.equal(quorumIndex([]), 0);
  });

  it("tells each moment from the leader's replication state", () => {
    assert.ok(atLeaderMoment("now", view(1)));
    assert.ok(!atLeaderMoment("unreplicated", view(1)));
    assert.ok(atLeaderMoment("unreplicated", view(1, { lastIndex: 21 })));
    assert.ok(!atLeaderMoment("fresh", view(1)));
    assert.ok(atLeaderMoment("fresh", view(1, { quorumIndex: 0, quorumTerm: 0 })));
    // A majority holds an entry of term 3 beyond the commit index at election: Figure 8's moment.
    assert.ok(atLeaderMoment("old-term-quorum", view(1, { quorumIndex: 12, quorumTerm: 3 })));
    assert.ok(!atLeaderMoment("old-term-quorum", view(1, { quorumIndex: 10, quorumTerm: 3 })));
    assert.ok(!atLeaderMoment("old-term-quorum", view(1, { quorumIndex: 12, quorumTerm: undefined })));
    assert.ok(!atLeaderMoment("old-term-quorum", view(1)));
  });
});
