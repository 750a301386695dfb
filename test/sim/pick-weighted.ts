// Weighted choice with integer weights: the one way the simulator's generators pick between options,
// so no decision ever depends on floating point.
import { assert } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";

/**
 * Picks one item with probability weight / (sum of weights). Weights are non-negative integers; an
 * item of weight 0 is never picked. Returns undefined when every weight is 0 (or there are no items).
 */
export function pickWeighted<T>(
  prng: Prng,
  items: readonly (readonly [item: T, weight: number])[],
): T | undefined {
  let total = 0;
  for (const [, weight] of items) {
    assert(
      Number.isSafeInteger(weight) && weight >= 0,
      `weight must be a non-negative integer, got ${weight}`,
    );
    total += weight;
  }
  if (total === 0) return undefined;
  let roll = prng.below(total);
  for (const [item, weight] of items) {
    if (roll < weight) return item;
    roll -= weight;
  }
  assert(false, "weighted pick fell through");
}
