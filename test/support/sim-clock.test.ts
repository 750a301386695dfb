// SimClock, the simulated time of the in-process cluster tests: checked with plain timers and
// promises that time moves only through its events, that waits end exactly when their condition
// holds or their deadline passes, and that a paused clock stands still.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SimClock } from "./sim-clock.js";

describe("SimClock", () => {
  it("runs timers in simulated time, in order, while started", async () => {
    const clock = new SimClock(1);
    const env = clock.env();
    const fired: string[] = [];
    env.after(30, () => fired.push(`b@${clock.nowMs}`));
    env.after(10, () => fired.push(`a@${clock.nowMs}`));
    clock.start();
    await clock.sleep(50);
    assert.deepEqual(fired, ["a@10", "b@30"]);
    assert.equal(clock.nowMs, 50);
    assert.equal(env.nowMs() - env.monotonicMs(), 1_700_000_000_000);
    await clock.pause();
  });

  it("ends a wait at the event that makes its condition hold", async () => {
    const clock = new SimClock(1);
    clock.start();
    let count = 0;
    for (const t of [5, 15, 25]) clock.after(t, () => count++);
    await clock.waitFor("two events", () => count === 2);
    assert.equal(clock.nowMs, 15);
    await clock.pause();
  });

  it("fails a wait at its deadline, naming what it waited for", async () => {
    const clock = new SimClock(1);
    clock.start();
    await assert.rejects(
      clock.waitFor("something that never happens", () => false, 100),
      (error: Error) => {
        return /100 simulated ms for something that never happens/.test(error.message);
      },
    );
    assert.equal(clock.nowMs, 100);
    await clock.pause();
  });

  it("stands still while paused and resumes where it stopped", async () => {
    const clock = new SimClock(1);
    let fired = false;
    clock.after(10, () => {
      fired = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fired, false);
    assert.equal(clock.nowMs, 0);
    clock.start();
    await clock.waitFor("the timer", () => fired);
    assert.equal(clock.nowMs, 10);
    await clock.pause();
  });

  it("gives each environment its own random stream, the same for the same seed", () => {
    const draws = (seed: number) => {
      const clock = new SimClock(seed);
      const [a, b] = [clock.env(), clock.env()];
      return [a.random.below(1_000_000), b.random.below(1_000_000)];
    };
    assert.deepEqual(draws(7), draws(7));
    assert.notDeepEqual(draws(7)[0], draws(7)[1]);
  });
});
