// The short fuzz run of `npm test`: a fixed seed, a bounded number of inputs per target against two
// live node processes (test/fuzz/run.ts), and the claim of issue 19: every input is answered or
// refused with a stable code, the nodes keep serving on every protocol, and no data changes (the
// known data after every batch, the state hash of both stores at the end).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeReport, fuzzTargets, runFuzz } from "./run.js";

describe("fuzzing a live node", { timeout: 600_000 }, () => {
  it("feeds every target a bounded run with no finding, no crash and no change of data", async () => {
    const inputsPerTarget = 150;
    const report = await runFuzz({ seed: 19, inputsPerTarget, batchSize: 50, say: () => {} });
    const lines = describeReport(report).join("\n");
    assert.deepEqual(report.problems, [], lines);
    for (const t of fuzzTargets) {
      const tally = report.tallies.get(t.name);
      assert.ok(tally !== undefined, t.name);
      assert.equal(tally.tried, inputsPerTarget, `${t.name}\n${lines}`);
      assert.deepEqual(tally.findings, [], `${t.name}\n${lines}`);
      // Inputs that reach a parser get refused with stable codes; a target that refused nothing
      // never got past its connection.
      assert.ok(tally.refused.size > 1, `${t.name} refused with one code at most\n${lines}`);
    }
    assert.equal(report.hashesAfter.size, 2);
    for (const [name, hash] of report.hashesAfter) assert.equal(hash, report.hashesBefore.get(name), name);
  });
});
