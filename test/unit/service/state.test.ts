// The state views: MemoryState against a sorted-map model, and StateOverlay, whose reads must equal
// those of the base after its effects are written through, for random write sequences (typed
// writes included, which the overlay encodes only when their bytes are needed).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  MemoryState,
  prefixEnd,
  readValue,
  type Space,
  StateOverlay,
  type ValueCodec,
} from "../../../src/service/state.js";
import { utf8 } from "../../../src/util/bytes.js";

const keyArb = fc.constantFrom("", "a", "ab", "b", "ba", "c", "\u00ff").map(utf8);
const opArb = fc.oneof(
  fc.record({ op: fc.constant("put" as const), key: keyArb, value: fc.string({ maxLength: 3 }).map(utf8) }),
  fc.record({ op: fc.constant("putValue" as const), key: keyArb, value: fc.string({ maxLength: 3 }) }),
  fc.record({ op: fc.constant("delete" as const), key: keyArb }),
);

/** Text values, counting how often they are encoded. */
function textCodec(): ValueCodec<string> & { encoded: number } {
  const codec = {
    encoded: 0,
    encode: (value: string) => {
      codec.encoded++;
      return utf8(value);
    },
    decode: (bytes: Uint8Array) => new TextDecoder().decode(bytes),
  };
  return codec;
}

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
          const codec = textCodec();
          const apply = (state: MemoryState | StateOverlay, o: (typeof baseOps)[number]) => {
            if (o.op === "put") state.put("kv", o.key, o.value);
            else if (o.op === "putValue") state.putValue("kv", o.key, o.value, codec);
            else state.delete("kv", o.key);
          };
          const base = new MemoryState();
          for (const o of baseOps) apply(base, o);
          const overlay = new StateOverlay(base);
          const expected = new MemoryState();
          for (const o of [...baseOps, ...overlayOps]) apply(expected, o);
          for (const o of overlayOps) apply(overlay, o);
          assert.deepEqual(readValue(overlay, "kv", start, codec), readValue(expected, "kv", start, codec));
          assert.deepEqual(overlay.get("kv", start), expected.get("kv", start));
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

describe("StateOverlay typed writes", () => {
  it("encode a key written many times in a round once, when the effects are taken", () => {
    const codec = textCodec();
    const overlay = new StateOverlay(new MemoryState());
    for (let i = 0; i < 40; i++) {
      overlay.putValue("stream-meta", utf8("s"), `v${i}`, codec);
      assert.equal(readValue(overlay, "stream-meta", utf8("s"), codec), `v${i}`);
    }
    assert.equal(codec.encoded, 0);
    assert.deepEqual(
      overlay.effects().map((e) => [e.space, e.value]),
      [["stream-meta", utf8("v39")]],
    );
    assert.equal(codec.encoded, 1);
  });

  it("hand the written value itself back to its codec, and bytes to any other reader", () => {
    const codec = textCodec();
    const other = textCodec();
    const overlay = new StateOverlay(new MemoryState());
    const value = "same object";
    overlay.putValue("kv", utf8("k"), value, codec);
    assert.equal(readValue(overlay, "kv", utf8("k"), codec), value);
    assert.equal(codec.encoded, 0);
    assert.equal(readValue(overlay, "kv", utf8("k"), other), value);
    assert.deepEqual(overlay.get("kv", utf8("k")), utf8(value));
    assert.equal(codec.encoded, 1);
  });
});

describe("prefixEnd", () => {
  it("is the least key above every key with the prefix", () => {
    assert.deepEqual(prefixEnd(utf8("ab")), utf8("ac"));
    assert.deepEqual(prefixEnd(Uint8Array.of(0x61, 0xff)), utf8("b"));
    assert.equal(prefixEnd(Uint8Array.of(0xff, 0xff)), undefined);
  });
});
