// The pace of the cross-replica state hash (pacedPause in src/node-assembly/cairn-node.ts): after a
// page of work it waits so that the work takes its share of the main thread, and on a clock that
// does not move while code runs (the simulator's) it waits one turn of the event loop.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Env } from "../../../src/node/index.js";
import { pacedPause } from "../../../src/node-assembly/cairn-node.js";
import { Prng } from "../../../src/util/prng.js";

/** An Env whose clock the test moves, recording what each pause asked for. */
function recordingEnv() {
  let nowMs = 0;
  const waits: (number | "turn")[] = [];
  const env: Env = {
    nowMs: () => nowMs,
    monotonicMs: () => nowMs,
    after(delayMs, run) {
      waits.push(delayMs);
      queueMicrotask(run);
      return () => undefined;
    },
    defer(run) {
      waits.push("turn");
      queueMicrotask(run);
    },
    random: new Prng(1),
  };
  const spend = (ms: number): void => {
    nowMs += ms;
  };
  return { env, waits, spend };
}

describe("pacedPause", () => {
  it("waits nine times a page's time at a 10% share, and 3 times at 25%", async () => {
    for (const [share, factor] of [
      [10, 9],
      [25, 3],
    ] as const) {
      const { env, waits, spend } = recordingEnv();
      const pause = pacedPause(env, share);
      spend(6);
      await pause();
      spend(2);
      await pause();
      assert.deepEqual(waits, [6 * factor, 2 * factor]);
    }
  });

  it("waits one turn when the page took no measurable time", async () => {
    const { env, waits } = recordingEnv();
    const pause = pacedPause(env, 10);
    await pause();
    await pause();
    assert.deepEqual(waits, ["turn", "turn"]);
  });

  it("takes one turn for each of the first unpaced pages, then paces", async () => {
    const { env, waits, spend } = recordingEnv();
    const pause = pacedPause(env, 10, 2);
    for (let page = 0; page < 3; page++) {
      spend(4);
      await pause();
    }
    assert.deepEqual(waits, ["turn", "turn", 36]);
  });

  it("does not count the wait itself as work", async () => {
    const { env, waits, spend } = recordingEnv();
    const pause = pacedPause(env, 10);
    spend(5);
    const waiting = pause();
    spend(45); // the timer's 45 ms pass
    await waiting;
    await pause();
    assert.deepEqual(waits, [45, "turn"]);
  });
});
