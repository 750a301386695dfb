// The discrete-event scheduler: events run in (time, insertion) order with the clock at their time,
// cancellation works, runUntil stops where asked, and runaway loops fail with a clear message.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Prng } from "../../src/util/prng.js";
import { Scheduler, SimulationLimitError } from "./scheduler.js";

describe("Scheduler", () => {
  it("runs events by time, ties in insertion order, with the clock at each event's time", () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.after(10, () => seen.push(`a@${s.nowMs}`));
    s.after(5, () => seen.push(`b@${s.nowMs}`));
    s.after(10, () => seen.push(`c@${s.nowMs}`));
    s.after(5, () => {
      seen.push(`d@${s.nowMs}`);
      s.after(0, () => seen.push(`e@${s.nowMs}`));
    });
    s.runAll();
    assert.deepEqual(seen, ["b@5", "d@5", "e@5", "a@10", "c@10"]);
    assert.equal(s.nowMs, 10);
  });

  it("agrees with a sorted reference for random schedules and cancellations", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(50), fc.boolean()), { maxLength: 200 }), (items) => {
        const s = new Scheduler();
        const ran: number[] = [];
        const ids = items.map(([delay], i) => s.after(delay, () => ran.push(i)));
        const expected: { delay: number; i: number }[] = [];
        items.forEach(([delay, cancel], i) => {
          const id = ids[i];
          if (cancel && id !== undefined) assert.equal(s.cancel(id), true);
          else expected.push({ delay, i });
        });
        expected.sort((a, b) => a.delay - b.delay || a.i - b.i);
        s.runAll();
        assert.deepEqual(
          ran,
          expected.map((e) => e.i),
        );
      }),
    );
  });

  it("cancels only events that are still pending", () => {
    const s = new Scheduler();
    let ran = 0;
    const id = s.after(1, () => ran++);
    assert.equal(s.pendingEvents, 1);
    assert.equal(s.cancel(id), true);
    assert.equal(s.cancel(id), false);
    assert.equal(s.pendingEvents, 0);
    const other = s.after(1, () => ran++);
    s.runAll();
    assert.equal(ran, 1);
    assert.equal(s.cancel(other), false);
    assert.equal(s.cancel(12345), false);
  });

  it("keeps its heap bounded when a timer is reset over and over", () => {
    const s = new Scheduler();
    let id = s.after(100, () => {});
    for (let i = 0; i < 20_000; i++) {
      s.cancel(id);
      id = s.after(100, () => {});
    }
    assert.equal(s.pendingEvents, 1);
    assert.ok(s.heapSize <= 2 * 1 + 1024 + 1, `heap holds ${s.heapSize} entries`);
  });

  it("runs until a time, leaving later events queued and the clock at that time", () => {
    const s = new Scheduler();
    const seen: number[] = [];
    for (const t of [3, 7, 7, 12]) s.after(t, () => seen.push(s.nowMs));
    assert.equal(s.runUntil(7), true);
    assert.deepEqual(seen, [3, 7, 7]);
    assert.equal(s.nowMs, 7);
    s.runUntil(10);
    assert.equal(s.nowMs, 10);
    assert.equal(s.pendingEvents, 1);
    assert.throws(() => s.runUntil(5), /cannot run until 5/);
  });

  it("runs until a predicate holds, or reports that it never did", () => {
    const s = new Scheduler();
    let count = 0;
    const tick = () => {
      count++;
      s.after(10, tick);
    };
    s.after(10, tick);
    assert.equal(
      s.runUntil(() => count === 5),
      true,
    );
    assert.equal(s.nowMs, 50);
    assert.equal(
      s.runUntil(() => count === 1000, 200),
      false,
    );
    assert.equal(s.nowMs, 200);
    assert.equal(count, 20);
    const empty = new Scheduler();
    assert.equal(
      empty.runUntil(() => false),
      false,
    );
  });

  it("fails with a clear message when a loop runs away or the queue floods", () => {
    const s = new Scheduler({ eventsMax: 100 });
    const spin = () => {
      s.after(0, spin, "spin");
    };
    s.after(0, spin, "spin");
    assert.throws(
      () => s.runAll(),
      (e: unknown) =>
        e instanceof SimulationLimitError &&
        e.code === "ERR_SIM_LIMIT" &&
        /more than 100 events by t=0ms: a runaway loop\? recent: spin/.test(e.message),
    );
    const flood = new Scheduler({ pendingEventsMax: 3 });
    for (let i = 0; i < 3; i++) flood.after(i, () => {});
    assert.throws(() => flood.after(1, () => {}, "fourth"), /more than 3 events pending .*"fourth"/);
  });

  it("rejects negative, fractional and past times", () => {
    const s = new Scheduler();
    assert.throws(() => s.after(-1, () => {}), /non-negative integer/);
    assert.throws(() => s.after(1.5, () => {}), /non-negative integer/);
    s.runUntil(10);
    assert.throws(() => s.at(9, () => {}), /cannot schedule at 9/);
  });

  it("replays identically from the same seed", () => {
    const trace = (seed: number) => {
      const prng = new Prng(seed);
      const s = new Scheduler();
      const out: string[] = [];
      const actor = (name: string) => {
        const act = () => {
          out.push(`${name}@${s.nowMs}`);
          if (out.length < 200) s.after(prng.below(5), act);
        };
        return act;
      };
      for (const name of ["a", "b", "c"]) s.after(prng.below(5), actor(name));
      s.runAll();
      return out;
    };
    assert.deepEqual(trace(1), trace(1));
    assert.notDeepEqual(trace(1), trace(2));
  });
});
