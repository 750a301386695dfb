// The binary codec toolkit: random values round-trip through writer and reader, every truncation of
// an encoding is a DecodeError (never a crash or a wrong value), and u64 keys sort like numbers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ByteReader, ByteWriter, compareBytes, DecodeError, utf8 } from "../../../src/util/bytes.js";

type Field =
  | { t: "u8"; v: number }
  | { t: "u32"; v: number }
  | { t: "u64"; v: number }
  | { t: "varint"; v: number }
  | { t: "bytes"; v: Uint8Array }
  | { t: "string"; v: string };

const safe = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const fieldArb: fc.Arbitrary<Field> = fc.oneof(
  fc.record({ t: fc.constant("u8" as const), v: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ t: fc.constant("u32" as const), v: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ t: fc.constant("u64" as const), v: safe }),
  fc.record({ t: fc.constant("varint" as const), v: fc.oneof(safe, fc.nat(300)) }),
  fc.record({ t: fc.constant("bytes" as const), v: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ t: fc.constant("string" as const), v: fc.string({ unit: "grapheme", maxLength: 20 }) }),
);

function write(fields: Field[]): Uint8Array {
  const w = new ByteWriter(1);
  for (const f of fields) {
    switch (f.t) {
      case "u8":
        w.u8(f.v);
        break;
      case "u32":
        w.u32(f.v);
        break;
      case "u64":
        w.u64(f.v);
        break;
      case "varint":
        w.varint(f.v);
        break;
      case "bytes":
        w.bytes(f.v);
        break;
      case "string":
        w.string(f.v);
        break;
    }
  }
  return w.finish();
}

function read(bytes: Uint8Array, fields: Field[]): unknown[] {
  const r = new ByteReader(bytes);
  const out = fields.map((f) => (f.t === "bytes" ? Uint8Array.from(r.bytes()) : r[f.t]()));
  r.end();
  return out;
}

describe("ByteWriter / ByteReader", () => {
  it("round-trips random field sequences", () => {
    fc.assert(
      fc.property(fc.array(fieldArb, { maxLength: 30 }), (fields) => {
        assert.deepEqual(
          read(write(fields), fields),
          fields.map((f) => f.v),
        );
      }),
    );
  });

  it("reports every strict truncation as a DecodeError", () => {
    fc.assert(
      fc.property(fc.array(fieldArb, { minLength: 1, maxLength: 10 }), (fields) => {
        const bytes = write(fields);
        for (let cut = 0; cut < bytes.length; cut++) {
          assert.throws(() => read(bytes.subarray(0, cut), fields), DecodeError);
        }
      }),
    );
  });

  it("rejects trailing bytes, over-long varints, oversize lengths and bad UTF-8", () => {
    assert.throws(() => new ByteReader(Uint8Array.of(1, 2)).end(), /trailing/);
    assert.throws(() => new ByteReader(new Uint8Array(9).fill(0x80)).varint(), /longer than 8/);
    assert.throws(
      () => new ByteReader(new ByteWriter().bytes(new Uint8Array(10)).finish()).bytes(5),
      /limit 5/,
    );
    assert.throws(() => new ByteReader(Uint8Array.of(2, 0xc3, 0x28)).string(), /UTF-8/);
    assert.throws(() => new ByteReader(new Uint8Array(8).fill(0xff)).u64(), /2\^53/);
  });

  it("refuses to write values it could not read back", () => {
    assert.throws(() => new ByteWriter().u64(-1), RangeError);
    assert.throws(() => new ByteWriter().varint(2 ** 53), RangeError);
    assert.throws(() => new ByteWriter().varint(1.5), RangeError);
  });

  it("encodes u64 so byte order is numeric order", () => {
    fc.assert(
      fc.property(safe, safe, (a, b) => {
        const ea = new ByteWriter().u64(a).finish();
        const eb = new ByteWriter().u64(b).finish();
        assert.equal(Math.sign(compareBytes(ea, eb)), Math.sign(a - b));
      }),
    );
  });

  it("compares byte strings lexicographically", () => {
    assert.ok(compareBytes(utf8("a"), utf8("b")) < 0);
    assert.ok(compareBytes(utf8("ab"), utf8("a")) > 0);
    assert.equal(compareBytes(utf8("x"), utf8("x")), 0);
  });
});
