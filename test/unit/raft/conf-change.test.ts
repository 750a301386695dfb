// Membership changes: the conf-change entry encoding round-trips for every node id and rejects
// malformed bytes fed to it, and the one-server-at-a-time rules accept and refuse the right changes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  applyConfChange,
  type ConfChange,
  ConfHistory,
  decodeConfChanges,
  encodeConfChanges,
} from "../../../src/raft/conf-change.js";
import { type ConfState, logIndex, nodeId } from "../../../src/raft/types.js";

const changeArb: fc.Arbitrary<ConfChange> = fc.record({
  type: fc.constantFrom("add-voter" as const, "add-learner" as const, "promote" as const, "remove" as const),
  node: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }).map(nodeId),
});

const conf = (voters: number[], learners: number[] = []): ConfState => ({
  voters: voters.map(nodeId),
  learners: learners.map(nodeId),
});

describe("conf change encoding", () => {
  it("round-trips every list of changes", () => {
    fc.assert(
      fc.property(fc.array(changeArb, { minLength: 1, maxLength: 6 }), (cs) => {
        assert.deepEqual(decodeConfChanges(encodeConfChanges(cs)), {
          ok: true,
          changes: cs.map((c) => ({ ...c })),
        });
      }),
    );
  });

  it("is compact: four bytes for one change of a small id", () => {
    assert.deepEqual(Array.from(encodeConfChanges([{ type: "remove", node: nodeId(5) }])), [1, 1, 4, 5]);
    assert.equal(encodeConfChanges([{ type: "promote", node: nodeId(300) }]).length, 5);
  });

  it("rejects every strict prefix and any trailing byte", () => {
    fc.assert(
      fc.property(fc.array(changeArb, { minLength: 1, maxLength: 3 }), fc.nat(255), (cs, extra) => {
        const bytes = encodeConfChanges(cs);
        for (let n = 0; n < bytes.length; n++) assert.equal(decodeConfChanges(bytes.slice(0, n)).ok, false);
        assert.deepEqual(decodeConfChanges(Uint8Array.from([...bytes, extra])), {
          ok: false,
          reason: "trailing-bytes",
        });
      }),
    );
  });

  it("names what is wrong with malformed input", () => {
    assert.deepEqual(decodeConfChanges(Uint8Array.from([2, 1, 1, 1])), { ok: false, reason: "bad-version" });
    assert.deepEqual(decodeConfChanges(Uint8Array.from([1, 0])), { ok: false, reason: "bad-count" });
    assert.deepEqual(decodeConfChanges(Uint8Array.from([1, 100, 1, 1])), { ok: false, reason: "bad-count" });
    assert.deepEqual(decodeConfChanges(Uint8Array.from([1, 1, 9, 1])), { ok: false, reason: "bad-type" });
    assert.deepEqual(decodeConfChanges(Uint8Array.from([1, 1, 1, 0])), { ok: false, reason: "bad-node" });
    assert.deepEqual(decodeConfChanges(Uint8Array.from([1, 1, 1, 0x81, 0])), {
      ok: false,
      reason: "bad-node",
    });
    const huge = Uint8Array.from([1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert.deepEqual(decodeConfChanges(huge), { ok: false, reason: "bad-node" });
  });

  it("never throws on random bytes, and accepts only canonical encodings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        const r = decodeConfChanges(bytes);
        if (r.ok) assert.deepEqual(encodeConfChanges(r.changes), bytes);
      }),
    );
  });
});

describe("conf change rules", () => {
  it("adds voters and learners that are not members", () => {
    assert.deepEqual(applyConfChange(conf([1, 2]), { type: "add-voter", node: nodeId(3) }), {
      ok: true,
      conf: conf([1, 2, 3]),
    });
    assert.deepEqual(applyConfChange(conf([1, 2]), { type: "add-learner", node: nodeId(4) }), {
      ok: true,
      conf: conf([1, 2], [4]),
    });
    assert.deepEqual(applyConfChange(conf([1, 2], [4]), { type: "add-voter", node: nodeId(4) }), {
      ok: false,
      reason: "already-member",
    });
  });

  it("promotes only learners", () => {
    assert.deepEqual(applyConfChange(conf([1], [2]), { type: "promote", node: nodeId(2) }), {
      ok: true,
      conf: conf([1, 2]),
    });
    assert.deepEqual(applyConfChange(conf([1, 2]), { type: "promote", node: nodeId(2) }), {
      ok: false,
      reason: "not-a-learner",
    });
  });

  it("removes members but never the last voter", () => {
    assert.deepEqual(applyConfChange(conf([1, 2], [3]), { type: "remove", node: nodeId(3) }), {
      ok: true,
      conf: conf([1, 2]),
    });
    assert.deepEqual(applyConfChange(conf([1]), { type: "remove", node: nodeId(1) }), {
      ok: false,
      reason: "last-voter",
    });
    assert.deepEqual(applyConfChange(conf([1]), { type: "remove", node: nodeId(7) }), {
      ok: false,
      reason: "not-a-member",
    });
  });

  it("tracks the configuration in force through truncation and compaction", () => {
    const h = new ConfHistory(conf([1, 2, 3]));
    h.append(logIndex(5), [{ type: "add-learner", node: nodeId(4) }]);
    h.append(logIndex(8), [{ type: "promote", node: nodeId(4) }]);
    assert.deepEqual(h.current(), conf([1, 2, 3, 4]));
    assert.deepEqual(h.at(6), conf([1, 2, 3], [4]));
    h.truncateFrom(8);
    assert.deepEqual(h.current(), conf([1, 2, 3], [4]));
    assert.equal(h.lastChangeIndex(), 5);
    h.compactTo(6);
    assert.equal(h.lastChangeIndex(), 0);
    assert.deepEqual(h.current(), conf([1, 2, 3], [4]));
  });
});
