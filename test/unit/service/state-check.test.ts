// The cross-replica state check names the node whose state hash differs from the majority's at
// the same applied index, never one that merely lags, and forgets a node once it agrees again.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryState } from "../../../src/service/state.js";
import { StateCheck } from "../../../src/service/state-check.js";
import { hashState } from "../../../src/service/state-hash.js";

const h = (index: number, hash: string) => ({ index, hash });

describe("StateCheck", () => {
  it("names the node that differs from the majority at an index", () => {
    const report = new StateCheck().compare(
      [
        { name: "n1", hashes: [h(100, "a"), h(200, "b")] },
        { name: "n2", hashes: [h(100, "a"), h(200, "b")] },
        { name: "n3", hashes: [h(100, "a"), h(200, "X")] },
      ],
      3,
    );
    assert.deepEqual(report, { index: 200, agreeing: 2, differing: [{ name: "n3", index: 200 }] });
  });

  it("does not name a node that has not reached an index, nor decide without a majority", () => {
    const check = new StateCheck();
    const lagging = check.compare(
      [
        { name: "n1", hashes: [h(100, "a"), h(200, "b")] },
        { name: "n2", hashes: [h(100, "a"), h(200, "b")] },
        { name: "n3", hashes: [h(100, "a")] },
      ],
      3,
    );
    assert.deepEqual(lagging.differing, []);
    const split = check.compare(
      [
        { name: "n1", hashes: [h(100, "a")] },
        { name: "n2", hashes: [h(100, "b")] },
      ],
      3,
    );
    assert.deepEqual(
      split,
      { index: null, agreeing: 0, differing: [] },
      "two of three disagreeing prove nothing",
    );
  });

  it("stops naming a node once it agrees again (after its repair)", () => {
    const report = new StateCheck().compare(
      [
        { name: "n1", hashes: [h(100, "a"), h(200, "b")] },
        { name: "n2", hashes: [h(100, "a"), h(200, "b")] },
        { name: "n3", hashes: [h(100, "X"), h(200, "b")] },
      ],
      3,
    );
    assert.deepEqual(report.differing, []);
  });

  it("keeps only the latest hashes of this node", () => {
    const check = new StateCheck(2);
    for (const i of [1, 2, 3]) check.record(h(i, `x${i}`));
    assert.deepEqual(check.recent(), [h(2, "x2"), h(3, "x3")]);
  });

  it("hashes equal states alike and a one-byte difference differently", () => {
    const build = (value: string) => {
      const state = new MemoryState();
      state.put("kv", new TextEncoder().encode("k"), new TextEncoder().encode(value));
      state.put("stream-message", new TextEncoder().encode("s"), new TextEncoder().encode("m"));
      return state;
    };
    assert.equal(hashState(build("v1")), hashState(build("v1")));
    assert.notEqual(hashState(build("v1")), hashState(build("v2")));
  });
});
