// The fault injector: every event of a generated schedule fires at its time, node faults reach the
// harness and network faults reach the SimNetwork, which ends fully connected after the safety phase.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../src/util/prng.js";
import { type FaultTarget, injectFaults } from "./fault-injector.js";
import { type FaultEvent, generateFaultSchedule } from "./fault-schedule.js";
import { Scheduler } from "./scheduler.js";
import { SimNetwork } from "./sim-network.js";

describe("injectFaults", () => {
  it("plays a schedule onto the network and the harness at the scheduled times", () => {
    const scheduler = new Scheduler();
    const net = new SimNetwork<string>(
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
    const calls: string[] = [];
    const target: FaultTarget = {
      crash: (n) => calls.push(`crash ${n}@${scheduler.nowMs}`),
      restart: (n) => calls.push(`restart ${n}@${scheduler.nowMs}`),
      setDiskExtraLatency: (n, ms) => calls.push(`disk ${n} +${ms}@${scheduler.nowMs}`),
      requestRemoveMember: (n) => calls.push(`remove ${n}@${scheduler.nowMs}`),
      requestAddMember: (n) => calls.push(`add ${n}@${scheduler.nowMs}`),
      requestLeadershipTransfer: (n) => calls.push(`transfer ${n}@${scheduler.nowMs}`),
    };
    const schedule = generateFaultSchedule(4, {
      clusterSize: 5,
      safetyPhaseMs: 20_000,
      livenessPhaseMs: 1_000,
      gapMinMs: 50,
      gapMaxMs: 300,
      slowDiskExtraMinMs: 5,
      slowDiskExtraMaxMs: 50,
    });
    const fired: FaultEvent[] = [];
    const topologies: string[] = [];
    injectFaults(scheduler, schedule, net, target, (e) => {
      assert.equal(scheduler.nowMs, e.atMs);
      fired.push(e);
    });
    // Watch the topology right after each network event.
    for (const e of schedule.events) {
      if (
        e.kind === "partition" ||
        e.kind === "isolate" ||
        e.kind === "bridge" ||
        e.kind === "partition-one-way"
      ) {
        scheduler.at(e.atMs, () => topologies.push(net.describeTopology()));
      }
    }
    scheduler.runUntil(schedule.livenessEndMs);
    assert.deepEqual(fired, schedule.events);
    const nodeEvents = schedule.events.filter((e) =>
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
});
