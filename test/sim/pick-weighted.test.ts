// Weighted choice: zero weights are never picked, all-zero gives undefined, frequencies follow the
// weights over many draws from a fixed seed, and bad weights are refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../src/util/prng.js";
import { pickWeighted } from "./pick-weighted.js";

describe("pickWeighted", () => {
  it("follows the weights and never picks a zero weight", () => {
    const prng = new Prng(1);
    const counts = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 4000; i++) {
      const k = pickWeighted(prng, [
        ["a", 1],
        ["b", 0],
        ["c", 3],
      ] as const);
      assert.ok(k !== undefined);
      counts[k]++;
    }
    assert.equal(counts.b, 0);
    assert.ok(counts.c > 2 * counts.a && counts.a > 700, JSON.stringify(counts));
  });

  it("returns undefined when nothing can be picked, and refuses bad weights", () => {
    const prng = new Prng(1);
    assert.equal(pickWeighted(prng, []), undefined);
    assert.equal(pickWeighted(prng, [["a", 0]]), undefined);
    assert.throws(() => pickWeighted(prng, [["a", -1]]), /non-negative integer/);
    assert.throws(() => pickWeighted(prng, [["a", 0.5]]), /non-negative integer/);
  });
});
