// The fault schedule generator: for many seeds and both cluster sizes, a replay of the schedule
// (computed independently here) never has more than a minority faulty during the safety phase, ends
// fully repaired, uses every kind of fault, and is a pure function of its seed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  aimOf,
  describeFaultSchedule,
  type FaultEvent,
  type FaultScheduleOptions,
  faultBudget,
  generateFaultSchedule,
} from "./fault-schedule.js";

const base = (clusterSize: 3 | 5): FaultScheduleOptions => ({
  clusterSize,
  safetyPhaseMs: 20_000,
  livenessPhaseMs: 5_000,
  gapMinMs: 50,
  gapMaxMs: 400,
  slowDiskExtraMinMs: 5,
  slowDiskExtraMaxMs: 50,
});

/** The faulty nodes after each event, computed from the events alone. */
function faultyOverTime(events: readonly FaultEvent[]): Set<number>[] {
  const crashed = new Set<number>();
  const slow = new Set<number>();
  const removed = new Set<number>();
  let cut: readonly number[] = [];
  const out: Set<number>[] = [];
  for (const e of events) {
    if (e.kind === "crash") crashed.add(e.node);
    if (e.kind === "restart") assert.ok(crashed.delete(e.node), "restart of a running node");
    if (e.kind === "slow-disk") slow.add(e.node);
    if (e.kind === "disk-normal") assert.ok(slow.delete(e.node), "disk-normal of a normal disk");
    if (e.kind === "remove-member") removed.add(e.node);
    if (e.kind === "add-member") assert.ok(removed.delete(e.node), "add of a member");
    if (e.kind === "partition") {
      assert.ok(e.minority.length < e.majority.length);
      cut = e.minority;
    }
    if (e.kind === "partition-one-way") cut = e.from;
    if (e.kind === "isolate") cut = [e.node];
    if (e.kind === "bridge") {
      assert.ok(!e.sideA.includes(e.bridge) && !e.sideB.includes(e.bridge));
      cut = e.sideA.length <= e.sideB.length ? e.sideA : e.sideB;
    }
    if (e.kind === "heal") cut = [];
    out.push(new Set([...crashed, ...slow, ...removed, ...cut]));
  }
  return out;
}

describe("fault schedule", () => {
  it("never has more than a minority faulty, and ends fully repaired", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom<3 | 5>(3, 5), (seed, size) => {
        const schedule = generateFaultSchedule(seed, base(size));
        const times = schedule.events.map((e) => e.atMs);
        assert.deepEqual(
          times,
          [...times].sort((a, b) => a - b),
        );
        assert.ok(times.every((t) => t <= schedule.safetyEndMs));
        const faulty = faultyOverTime(schedule.events);
        faulty.forEach((set, i) => {
          assert.ok(
            set.size <= faultBudget(size),
            `after event ${i}: ${[...set]} faulty in a ${size}-node cluster`,
          );
          assert.ok([...set].every((n) => n >= 1 && n <= size));
        });
        assert.equal(faulty.at(-1)?.size ?? 0, 0);
        assert.equal(schedule.livenessEndMs, schedule.safetyEndMs + 5_000);
        // Only repairs happen at the very end of the safety phase.
        const repairs = new Set(["heal", "restart", "disk-normal", "add-member"]);
        const atEnd = schedule.events.filter((e) => e.atMs === schedule.safetyEndMs);
        assert.ok(atEnd.every((e) => repairs.has(e.kind)));
      }),
      { numRuns: 200 },
    );
  });

  it("uses every kind of fault across a few seeds", () => {
    const kinds = new Set<string>();
    for (let seed = 0; seed < 5; seed++) {
      for (const e of generateFaultSchedule(seed, base(5)).events) kinds.add(e.kind);
    }
    assert.deepEqual([...kinds].sort(), [
      "add-member",
      "bridge",
      "crash",
      "disk-normal",
      "heal",
      "isolate",
      "partition",
      "partition-one-way",
      "remove-member",
      "restart",
      "slow-disk",
      "transfer-leadership",
    ]);
  });

  it("makes two nodes faulty at once in a five-node cluster, one in a three-node cluster", () => {
    const maxFaulty = (size: 3 | 5) =>
      Math.max(...faultyOverTime(generateFaultSchedule(3, base(size)).events).map((s) => s.size));
    assert.equal(maxFaulty(5), 2);
    assert.equal(maxFaulty(3), 1);
  });

  it("honours zero weights", () => {
    const schedule = generateFaultSchedule(1, {
      ...base(5),
      weights: { partition: 0, "partition-one-way": 0, bridge: 0, isolate: 0, "remove-member": 0 },
    });
    const kinds = new Set(schedule.events.map((e) => e.kind));
    for (const k of [
      "partition",
      "partition-one-way",
      "bridge",
      "isolate",
      "remove-member",
      "heal",
      "add-member",
    ]) {
      assert.ok(!kinds.has(k as FaultEvent["kind"]), k);
    }
    assert.ok(kinds.has("crash"));
  });

  it("aims some faults at the leader, and chains leader churns through Figure 8's three moments", () => {
    const events = [1, 2, 3, 4, 5, 6].flatMap((seed) => generateFaultSchedule(seed, base(3)).events);
    const aimed = events.filter((e) => aimOf(e) !== undefined);
    assert.ok(aimed.some((e) => e.kind === "crash") && aimed.some((e) => e.kind === "isolate"));
    const moments = new Set(aimed.map((e) => aimOf(e)?.moment));
    assert.deepEqual([...moments].sort(), ["fresh", "now", "old-term-quorum", "unreplicated"]);
    // A churn: cut off at `unreplicated`, then repair + cut off at `fresh`, then at `old-term-quorum`.
    const churn = events.findIndex(
      (e, i) =>
        aimOf(e)?.moment === "unreplicated" &&
        aimOf(e)?.waitMs === 1_000 &&
        aimOf(events[i + 1] ?? e)?.moment === "fresh",
    );
    assert.ok(churn >= 0, "no leader churn in six schedules");
    const steps = events.slice(churn, churn + 5);
    assert.deepEqual(
      steps.map((e) => aimOf(e)?.moment),
      ["unreplicated", "fresh", "fresh", "old-term-quorum", "old-term-quorum"],
    );
    assert.ok(["heal", "restart"].includes(steps[1]?.kind ?? ""));
    assert.ok(steps.every((e) => e.atMs === steps[0]?.atMs));
  });

  it("is a pure function of its seed", () => {
    assert.deepEqual(generateFaultSchedule(77, base(5)), generateFaultSchedule(77, base(5)));
    assert.notDeepEqual(generateFaultSchedule(77, base(5)).events, generateFaultSchedule(78, base(5)).events);
  });

  it("prints one line per event and the phase ends", () => {
    const schedule = generateFaultSchedule(5, { ...base(3), safetyPhaseMs: 1000 });
    const text = describeFaultSchedule(schedule);
    assert.equal(text.split("\n").length, schedule.events.length + 2);
    assert.match(text, /1000ms safety phase ends: all repaired/);
  });
});
