// A node that keeps finding damage right after repairing itself backs off: the pacing of in-place
// repairs, driven by the times it is told (no clock).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RepairBackoff } from "../../../src/cli/repair-backoff.js";

const settings = { quietMs: 60_000, delayMinMs: 1_000, delayMaxMs: 8_000 };

describe("RepairBackoff", () => {
  it("repairs at once the first time and after a quiet stretch", () => {
    const backoff = new RepairBackoff(settings);
    assert.equal(backoff.nextDelayMs(0), 0);
    assert.equal(backoff.nextDelayMs(60_000), 0);
    assert.equal(backoff.nextDelayMs(200_000), 0);
    assert.equal(backoff.repairs, 3);
  });

  it("waits, doubling up to its cap, while damage keeps coming back soon after a repair", () => {
    const backoff = new RepairBackoff(settings);
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 7; i++) {
      const delay = backoff.nextDelayMs(now);
      delays.push(delay);
      // The damage is found again 10 s after the repair (after its wait).
      now += delay + 10_000;
    }
    assert.deepEqual(delays, [0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    // A quiet stretch measured from the last repair (after its wait) resets the pacing.
    assert.equal(backoff.nextDelayMs(now - 10_000 + 60_000), 0);
  });
});
