// Seed-derived simulation options: a pure function of (seed, level), within each level's bounds,
// varied across seeds, printed with a replay line that parses back to the same run.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { generateFaultSchedule } from "./fault-schedule.js";
import {
  describeSimOptions,
  parseSimArgs,
  replayLine,
  type SimLevel,
  simOptionsFromSeed,
} from "./sim-options.js";

const seedArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const levelArb = fc.constantFrom<SimLevel>(0, 1, 2);

describe("simOptionsFromSeed", () => {
  it("is a pure function of seed and level, and different seeds differ", () => {
    assert.deepEqual(simOptionsFromSeed(1234, 1), simOptionsFromSeed(1234, 1));
    assert.notDeepEqual(simOptionsFromSeed(1234, 1), simOptionsFromSeed(1235, 1));
    assert.notDeepEqual(simOptionsFromSeed(1234, 1), simOptionsFromSeed(1234, 2));
  });

  it("stays within sane bounds for every seed and level", () => {
    fc.assert(
      fc.property(seedArb, levelArb, (seed, level) => {
        const o = simOptionsFromSeed(seed, level);
        assert.ok(o.clusterSize === 3 || o.clusterSize === 5);
        assert.equal(o.faults.clusterSize, o.clusterSize);
        assert.ok(o.network.latencyMinMs >= 1 && o.network.latencyMaxMs >= o.network.latencyMinMs);
        for (const [n, d] of [o.network.loss, o.network.duplicate, o.network.reorder])
          assert.ok(n >= 0 && n <= d);
        assert.ok(o.network.loss[0] / o.network.loss[1] <= 0.1, "never more than 10% loss");
        assert.ok(o.faults.gapMaxMs >= o.faults.gapMinMs && o.faults.gapMinMs >= 1);
        assert.ok(o.workload.clients >= 2 && o.workload.keys >= 1 && o.workload.operationsMax >= 150);
        const { get, put, putIf, delete: del, incr } = o.workload.mix;
        assert.ok(get > 0 && put > 0 && get + put + putIf + del + incr > 0);
        // The derived fault options are valid input for the generator.
        generateFaultSchedule(o.faultSeed, { ...o.faults, safetyPhaseMs: 2_000 });
      }),
      { numRuns: 200 },
    );
  });

  it("keeps level 0 calm and small, and varies cluster size at level 1", () => {
    const calm = simOptionsFromSeed(9, 0);
    assert.equal(calm.clusterSize, 3);
    assert.deepEqual(calm.network.loss, [0, 1000]);
    assert.deepEqual(calm.disk.lostUnsyncedOnCrash, [0, 1]);
    const sizes = new Set(Array.from({ length: 20 }, (_, s) => simOptionsFromSeed(s, 1).clusterSize));
    assert.deepEqual([...sizes].sort(), [3, 5]);
  });

  it("prints a replay line that parses back to the same options", () => {
    const o = simOptionsFromSeed(1234, 2);
    assert.equal(replayLine(o), "npm run sim -- --seed 1234 --level 2");
    const args = replayLine(o).split(" ").slice(4);
    const parsed = parseSimArgs(args, 0);
    assert.deepEqual(simOptionsFromSeed(parsed.seed, parsed.level), o);
    assert.match(describeSimOptions(o), /^seed 1234 level 2: [35] nodes\n/);
    assert.match(describeSimOptions(o), /replay: npm run sim -- --seed 1234 --level 2$/);
  });

  it("rejects bad arguments with a stable code", () => {
    assert.deepEqual(parseSimArgs([], 77), { seed: 77, level: 1 });
    for (const bad of [
      ["--seed"],
      ["--seed", "-1"],
      ["--seed", "1.5"],
      ["--level", "3"],
      ["--speed", "1"],
      ["--seed", "99999999999999999999"],
    ]) {
      assert.throws(
        () => parseSimArgs(bad, 0),
        (e: unknown) => e instanceof Error && "code" in e && e.code === "ERR_SIM_ARGS",
        JSON.stringify(bad),
      );
    }
  });
});
