import { assert } from "./assert.js";

const U32 = 0x1_0000_0000;

/**
 * A seeded 32-bit integer pseudo-random generator (SplitMix32-style mixing over a Weyl sequence).
 * Deterministic across platforms: integer arithmetic only, no floats in any decision, so a seed
 * reproduces a simulation exactly.
 */
export class Prng {
  #state: number;

  /** Creates a generator; equal seeds give equal sequences. `seed` is taken modulo 2^32. */
  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), `seed must be a safe integer, got ${String(seed)}`);
    this.#state = (((seed % U32) + U32) % U32) >>> 0;
  }

  /** The next value, uniform in [0, 2^32). */
  nextU32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** A uniform integer in [0, bound), without modulo bias (rejection sampling). `bound` is in [1, 2^32]. */
  below(bound: number): number {
    assert(Number.isSafeInteger(bound) && bound >= 1 && bound <= U32, `bound out of range: ${bound}`);
    // Reject the top partial bucket so every residue is equally likely.
    const limit = U32 - (U32 % bound);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % bound;
    }
  }

  /** A uniform integer in [min, max], both inclusive. */
  range(min: number, max: number): number {
    assert(
      Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max,
      `bad range [${min}, ${max}]`,
    );
    return min + this.below(max - min + 1);
  }

  /** True with probability numerator/denominator (integers, 0 <= numerator <= denominator). */
  chance(numerator: number, denominator: number): boolean {
    assert(
      Number.isSafeInteger(numerator) && Number.isSafeInteger(denominator) && denominator >= 1,
      `bad probability ${numerator}/${denominator}`,
    );
    assert(
      numerator >= 0 && numerator <= denominator,
      `probability out of [0, 1]: ${numerator}/${denominator}`,
    );
    return this.below(denominator) < numerator;
  }

  /** One element of a non-empty array, uniformly. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, "pick from an empty array");
    return items[this.below(items.length)] as T;
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** A new independent generator seeded from this one, for a component that needs its own stream. */
  fork(): Prng {
    return new Prng(this.nextU32());
  }
}
