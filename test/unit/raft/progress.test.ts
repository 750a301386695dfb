// Replication progress per follower: the probe / replicate / snapshot state machine, the bounded
// in-flight window at its limit, and rejection of stale answers, each as the leader would see it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Inflights, Progress } from "../../../src/raft/progress.js";
import { logIndex } from "../../../src/raft/types.js";

describe("Inflights", () => {
  it("refuses to grow past its capacity and frees by acknowledged index", () => {
    const w = new Inflights(3);
    w.add(2);
    w.add(4);
    w.add(9);
    assert.equal(w.full(), true);
    assert.throws(() => w.add(10), /overflow/);
    w.freeLE(4);
    assert.equal(w.count, 1);
    assert.equal(w.full(), false);
    w.freeFirst();
    assert.equal(w.count, 0);
  });

  it("matches a list model under random add/free sequences", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.tuple(fc.boolean(), fc.nat(5))), (cap, ops) => {
        const w = new Inflights(cap);
        let model: number[] = [];
        let next = 1;
        for (const [isAdd, k] of ops) {
          if (isAdd && model.length < cap) {
            next += k + 1;
            w.add(next);
            model.push(next);
          } else if (!isAdd) {
            const upTo = next - k;
            w.freeLE(upTo);
            model = model.filter((x) => x > upTo);
          }
          assert.equal(w.count, model.length);
          assert.equal(w.full(), model.length >= cap);
        }
      }),
    );
  });
});

describe("Progress", () => {
  it("probes one append at a time", () => {
    const p = new Progress(logIndex(5), 4);
    assert.equal(p.state, "probe");
    assert.equal(p.isPaused(), false);
    p.sentAppend(3, logIndex(7));
    assert.equal(p.isPaused(), true);
    assert.equal(p.nextIndex, 5, "probing does not move nextIndex optimistically");
  });

  it("backs off on rejection using the follower's hint, never below match + 1", () => {
    const p = new Progress(logIndex(10), 4);
    p.sentAppend(1, logIndex(10));
    assert.equal(p.maybeDecrTo(logIndex(8), logIndex(3), false), false, "answer to an older probe is stale");
    assert.equal(p.maybeDecrTo(logIndex(9), logIndex(3), false), true);
    assert.equal(p.nextIndex, 4);
    assert.equal(p.isPaused(), false);
  });

  it("streams in replicate state until the window is full", () => {
    const p = new Progress(logIndex(1), 2);
    p.maybeUpdate(logIndex(3));
    p.becomeReplicate();
    assert.equal(p.nextIndex, 4);
    p.sentAppend(2, logIndex(5));
    assert.equal(p.nextIndex, 6);
    p.sentAppend(1, logIndex(6));
    assert.equal(p.isPaused(), true);
    p.maybeUpdate(logIndex(5));
    p.inflights.freeLE(5);
    assert.equal(p.isPaused(), false);
    assert.equal(p.maybeDecrTo(logIndex(6), logIndex(0), false), true);
    assert.equal(p.nextIndex, 6);
  });

  it("ignores an unflagged rejection at or below the match: a late answer to an older append", () => {
    for (const state of ["replicate", "probe"] as const) {
      const p = new Progress(logIndex(1), 4);
      p.maybeUpdate(logIndex(5));
      if (state === "replicate") p.becomeReplicate();
      else p.becomeProbe();
      p.sentAppend(1, logIndex(6));
      // A reordering network delivers the rejection of an append sent before the peer caught up.
      for (const rejected of [3, 5]) {
        assert.equal(p.maybeDecrTo(logIndex(rejected), logIndex(2), false), false, `${state}, ${rejected}`);
        assert.equal(p.state, state, "streaming goes on");
        assert.equal(p.matchIndex, 5);
      }
    }
  });

  it("forgets the match on a rejection flagged entriesLost, in every state", () => {
    for (const state of ["replicate", "probe", "snapshot"] as const) {
      const p = new Progress(logIndex(1), 4);
      p.maybeUpdate(logIndex(5));
      if (state === "replicate") p.becomeReplicate();
      if (state === "snapshot") p.becomeSnapshot(logIndex(5));
      // The peer answers a heartbeat (commit 4) with its last index 1 as the hint.
      assert.equal(p.maybeDecrTo(logIndex(4), logIndex(1), true), true, state);
      assert.equal(p.matchIndex, 0, "nothing the peer acknowledged counts");
      assert.equal(p.state, "probe");
      assert.equal(p.nextIndex, 2, "probe just past the peer's last entry");
    }
  });

  it("pauses in snapshot state and resumes probing after the snapshot", () => {
    const p = new Progress(logIndex(1), 2);
    p.becomeSnapshot(logIndex(50));
    assert.equal(p.isPaused(), true);
    p.becomeProbe();
    assert.equal(p.nextIndex, 51);
    assert.equal(p.state, "probe");
  });

  it("ignores a stale success that does not move matchIndex", () => {
    const p = new Progress(logIndex(1), 2);
    assert.equal(p.maybeUpdate(logIndex(4)), true);
    assert.equal(p.maybeUpdate(logIndex(2)), false);
    assert.equal(p.matchIndex, 4);
  });
});
