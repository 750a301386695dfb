// The nemesis's schedule is a pure function of its seed (a seed replays it), every fault heals
// before the run ends, faults never overlap, and each partition shape cuts exactly the links it
// names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cutOff,
  faultKinds,
  faultSchedule,
  type Link,
  linksBetween,
  partitionLinks,
  type ScheduleOptions,
} from "./schedule.js";

const options: ScheduleOptions = {
  seed: 1,
  durationMs: 120_000,
  kinds: faultKinds,
  quietMinMs: 1_000,
  quietMaxMs: 4_000,
  holdMinMs: 1_000,
  holdMaxMs: 6_000,
};

const key = (l: Link) => `${l.from}->${l.to}`;
const keys = (links: readonly Link[]) => links.map(key).sort();

describe("fault schedule", () => {
  it("replays from its seed, and another seed gives another schedule", () => {
    assert.deepEqual(faultSchedule(options), faultSchedule(options));
    assert.notDeepEqual(faultSchedule(options), faultSchedule({ ...options, seed: 2 }));
  });

  it("holds one fault at a time, with quiet between, and heals every fault before the end", () => {
    for (let seed = 0; seed < 50; seed++) {
      const schedule = faultSchedule({ ...options, seed });
      assert.ok(schedule.length > 5, `seed ${seed} schedules faults`);
      let freeFromMs = 0;
      for (const f of schedule) {
        assert.ok(f.atMs >= freeFromMs + options.quietMinMs, `seed ${seed}: quiet before ${f.atMs}`);
        assert.ok(f.holdMs >= options.holdMinMs && f.holdMs <= options.holdMaxMs);
        freeFromMs = f.atMs + f.holdMs;
      }
      assert.ok(freeFromMs <= options.durationMs);
    }
  });

  it("uses only the fault kinds asked for, and every kind over enough seeds", () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      for (const f of faultSchedule({ ...options, seed })) seen.add(f.fault.kind);
      for (const f of faultSchedule({ ...options, seed, kinds: ["pause", "partition"] })) {
        assert.ok(f.fault.kind === "pause" || f.fault.kind === "partition");
      }
    }
    assert.deepEqual([...seen].sort(), [...faultKinds].sort());
  });
});

describe("partition shapes", () => {
  it("isolate the leader: every link to and from it, nothing else", () => {
    assert.deepEqual(keys(partitionLinks("isolate-leader", 3, 1, 7)), ["0->1", "1->0", "1->2", "2->1"]);
  });

  it("isolate a follower: one node other than the leader, cut from all the others", () => {
    for (let salt = 0; salt < 20; salt++) {
      const links = partitionLinks("isolate-follower", 5, 2, salt);
      const alone = [0, 1, 3, 4].find((n) => links.filter((l) => l.from === n).length === 4);
      assert.ok(alone !== undefined, "one follower has all four of its outgoing links cut");
      assert.deepEqual(
        keys(links),
        keys(
          linksBetween(
            [alone],
            [0, 1, 2, 3, 4].filter((n) => n !== alone),
          ),
        ),
      );
    }
  });

  it("a minority of five is two nodes cut from the other three", () => {
    const links = partitionLinks("minority", 5, 0, 3);
    assert.equal(links.length, 12);
    const side = [...new Set(links.map((l) => l.from))].filter(
      (n) => links.filter((l) => l.from === n).length === 3,
    );
    assert.equal(side.length, 2);
  });

  it("a bridge node keeps every link while the two sides lose theirs", () => {
    for (const size of [3, 5]) {
      for (let salt = 0; salt < 10; salt++) {
        const links = partitionLinks("bridge", size, 0, salt);
        const touched = new Set(links.flatMap((l) => [l.from, l.to]));
        assert.equal(touched.size, size - 1, "exactly one node (the bridge) keeps all its links");
        const bridge = [...Array(size).keys()].find((n) => !touched.has(n));
        assert.ok(bridge !== undefined);
        const rest = [...Array(size).keys()].filter((n) => n !== bridge);
        const first = rest[0] ?? 0;
        const sideA = rest.filter((n) => n === first || !links.some((l) => l.from === first && l.to === n));
        const sideB = rest.filter((n) => !sideA.includes(n));
        assert.deepEqual(keys(links), keys(linksBetween(sideA, sideB)));
      }
    }
  });

  it("one-way shapes cut one direction of the leader's links", () => {
    assert.deepEqual(keys(partitionLinks("leader-mute", 3, 0, 1)), ["0->1", "0->2"]);
    assert.deepEqual(keys(partitionLinks("leader-deaf", 3, 0, 1)), ["1->0", "2->0"]);
  });

  it("aims leader shapes at a node picked by the salt when no leader is known", () => {
    assert.deepEqual(
      partitionLinks("isolate-leader", 3, undefined, 5),
      partitionLinks("isolate-leader", 3, undefined, 5),
    );
    assert.equal(partitionLinks("isolate-leader", 3, undefined, 5).length, 4);
  });
});

describe("who a partition cuts off", () => {
  it("names the nodes left without a majority to talk to both ways", () => {
    assert.deepEqual(cutOff(partitionLinks("isolate-leader", 3, 2, 1), 3), [2]);
    assert.deepEqual(cutOff(partitionLinks("leader-mute", 3, 0, 1), 3), [0]);
    assert.deepEqual(cutOff(partitionLinks("leader-deaf", 5, 4, 1), 5), [4]);
    assert.deepEqual(
      cutOff(partitionLinks("bridge", 3, 0, 1), 3),
      [],
      "the bridge keeps a majority for both sides",
    );
    assert.equal(cutOff(partitionLinks("minority", 5, 0, 3), 5).length, 2);
  });
});
