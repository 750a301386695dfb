// The seeded PRNG: same seed, same sequence; values stay in their ranges; no modulo bias that a
// simulator's fault rates would inherit. Property tests over random seeds and bounds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Prng } from "../../../src/util/prng.js";

describe("Prng", () => {
  it("gives equal sequences for equal seeds and different ones for different seeds", () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const a = new Prng(seed);
        const b = new Prng(seed);
        const xs = Array.from({ length: 8 }, () => a.nextU32());
        assert.deepEqual(
          xs,
          Array.from({ length: 8 }, () => b.nextU32()),
        );
      }),
    );
    assert.notDeepEqual(
      Array.from(
        { length: 4 },
        (
          (p: Prng) => () =>
            p.nextU32()
        )(new Prng(1)),
      ),
      Array.from(
        { length: 4 },
        (
          (p: Prng) => () =>
            p.nextU32()
        )(new Prng(2)),
      ),
    );
  });

  it("is stable across releases: a recorded seed must replay the same run", () => {
    // Recorded once from this generator. If it ever changes, every seed in a regression list would
    // replay a different run, so this must fail loudly.
    const p = new Prng(12345);
    assert.deepEqual(
      [p.nextU32(), p.nextU32(), p.below(1000), p.below(1000)],
      [1200724404, 818072533, 225, 836],
    );
  });

  it("keeps below(n) in [0, n) and range(a, b) in [a, b]", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 2 ** 32 }), (seed, bound) => {
        const p = new Prng(seed);
        for (let i = 0; i < 20; i++) {
          const x = p.below(bound);
          assert.ok(Number.isInteger(x) && x >= 0 && x < bound);
        }
      }),
    );
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: -1000, max: 1000 }), fc.nat(1000), (seed, min, width) => {
        const p = new Prng(seed);
        const x = p.range(min, min + width);
        assert.ok(x >= min && x <= min + width);
      }),
    );
  });

  it("is roughly uniform: every bucket of below(10) gets 10% +- 2% of 20,000 draws", () => {
    const p = new Prng(7);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const b = p.below(10);
      counts[b] = (counts[b] ?? 0) + 1;
    }
    for (const c of counts) assert.ok(c > 1600 && c < 2400, `bucket count ${c}`);
  });

  it("chance(n, d) is never for 0 and always for d/d, and near n/d otherwise", () => {
    const p = new Prng(3);
    for (let i = 0; i < 100; i++) {
      assert.equal(p.chance(0, 5), false);
      assert.equal(p.chance(5, 5), true);
    }
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (p.chance(1, 4)) hits++;
    assert.ok(hits > 2200 && hits < 2800, `hits ${hits}`);
  });

  it("rejects bad arguments with an assertion", () => {
    const p = new Prng(1);
    assert.throws(() => p.below(0), /bound/);
    assert.throws(() => p.range(3, 2), /range/);
    assert.throws(() => p.chance(3, 2), /probability/);
    assert.throws(() => p.pick([]), /empty/);
    assert.throws(() => new Prng(1.5), /seed/);
  });

  it("shuffle keeps the elements and fork gives an independent stream", () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(fc.integer()), (seed, items) => {
        const shuffled = new Prng(seed).shuffle([...items]);
        assert.deepEqual(
          [...shuffled].sort((a, b) => a - b),
          [...items].sort((a, b) => a - b),
        );
      }),
    );
    const p = new Prng(9);
    const child = p.fork();
    assert.notEqual(child.nextU32(), p.nextU32());
  });
});
