// The availability figures: shares and percentiles over attempts, and the breakdown that files each
// attempt under the fault that held when it began (to a struck node or another) or "between faults";
// and the same per operation, retries included.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AvailabilityLog, percentile, summarizeOperations } from "./availability.js";

describe("availability", () => {
  it("takes nearest-rank percentiles", () => {
    assert.equal(percentile([], 99), 0);
    assert.equal(percentile([5, 1, 3], 50), 3);
    assert.equal(
      percentile(
        [...Array(100).keys()].map((i) => i + 1),
        99,
      ),
      99,
    );
  });

  it("sums up attempts and files them by the fault in force when they began", () => {
    let now = 0;
    const log = new AvailabilityLog(() => now);
    const attempt = (node: number, at: number, result: "ok" | "error" | "timeout", code?: string) => {
      now = at;
      log.end(log.begin(node), result, code);
    };
    attempt(0, 10, "ok");
    attempt(1, 1_000, "timeout", "lost (timeout)");
    attempt(2, 1_500, "ok");
    attempt(1, 2_500, "error", "refused (ECONNREFUSED)");
    attempt(2, 4_000, "ok");
    attempt(0, 9_000, "ok");
    const summary = log.summary();
    assert.equal(summary.operations, 6);
    assert.equal(summary.okShare, 4 / 6);
    assert.deepEqual(summary.errorCodes, [
      ["lost (timeout)", 1],
      ["refused (ECONNREFUSED)", 1],
    ]);
    const rows = log.breakdown([
      { atMs: 900, healedAtMs: 2_000, kind: "pause", description: "pause follower", struck: [1] },
      { atMs: 2_400, healedAtMs: 3_000, kind: "kill", description: "kill any", struck: [1] },
    ]);
    assert.deepEqual(
      [...rows].map(([k, s]) => [k, s.operations, s.ok]),
      [
        ["5 s after a kill healed, to the others", 1, 1],
        ["between faults", 2, 2],
        ["kill, to a struck node", 1, 0],
        ["pause, to a struck node", 1, 0],
        ["pause, to the others", 1, 1],
      ],
    );
  });

  it("counts an operation answered on a retry as answered, from its first call", () => {
    const s = summarizeOperations([12, undefined, 40, undefined]);
    assert.deepEqual(s, { operations: 4, ok: 2, okShare: 0.5, okP50Ms: 12, okP99Ms: 40 });
  });
});
