// The state views: MemoryState against a sorted-map model, and StateOverlay, whose reads must equal
// those of the base after its effects are written through, for random write sequences.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MemoryState, prefixEnd, type Space, StateOverlay } from "../../../src/service/state.js";
import { utf8 } from "../../../src/util/bytes.js";

const keyArb = fc.constantFrom("", "a", "ab", "b", "ba", "c", "\u00ff").map(utf8);
const opArb = fc.oneof(
  fc.record({ op: fc.constant("put" as const), key: keyArb, value: fc.string({ maxLength: 3 }).map(utf8) }),
  fc.record({ op: fc.constant("delete" as const), key: keyArb }),
);

function dump(
  state: MemoryState | StateOverlay,
  space: Space,
  start: Uint8Array,
  end: Uint8Array | undefined,
  limit: number,
) {
  return [...state.range(space, start, end, limit)].map(([k, v]) => [
    Buffer.from(k).toString("hex"),
    Buffer.from(v).toString("hex"),
  ]);
}

describe("StateOverlay", () => {
  it("reads like the base with its effects applied", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 12 }),
        fc.array(opArb, { maxLength: 12 }),
        keyArb,
        fc.option(keyArb, { nil: undefined }),
        fc.nat(8),
        (baseOps, overlayOps, start, end, limit) => {
          const base = new MemoryState();
          for (const o of baseOps) o.op === "put" ? base.put("kv", o.key, o.value) : base.delete("kv", o.key);
          const overlay = new StateOverlay(base);
          const expected = new MemoryState();
          for (const o of baseOps)
            o.op === "put" ? expected.put("kv", o.key, o.value) : expected.delete("kv", o.key);
          for (const o of overlayOps) {
            if (o.op === "put") {
              overlay.put("kv", o.key, o.value);
              expected.put("kv", o.key, o.value);
            } else {
              overlay.delete("kv", o.key);
              expected.delete("kv", o.key);
            }
          }
          assert.deepEqual(dump(overlay, "kv", start, end, limit), dump(expected, "kv", start, end, limit));
          for (const effect of overlay.effects()) {
            effect.value === undefined
              ? base.delete(effect.space, effect.key)
              : base.put(effect.space, effect.key, effect.value);
          }
          assert.deepEqual(
            dump(base, "kv", new Uint8Array(0), undefined, 100),
            dump(expected, "kv", new Uint8Array(0), undefined, 100),
          );
        },
      ),
    );
  });
});

describe("prefixEnd", () => {
  it("is the least key above every key with the prefix", () => {
    assert.deepEqual(prefixEnd(utf8("ab")), utf8("ac"));
    assert.deepEqual(prefixEnd(Uint8Array.of(0x61, 0xff)), utf8("b"));
    assert.equal(prefixEnd(Uint8Array.of(0xff, 0xff)), undefined);
  });
});
