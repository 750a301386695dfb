// CRC helpers: the known CRC-32 check value, and that continuing over pieces equals the CRC of the
// concatenation (the WAL checksums a header and a payload without copying them together).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { crc32, crc32Of } from "../../../src/util/crc.js";

describe("crc32", () => {
  it("matches the standard check value for '123456789'", () => {
    assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  it("over pieces equals over the concatenation", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), (parts) => {
        const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let offset = 0;
        for (const p of parts) {
          whole.set(p, offset);
          offset += p.length;
        }
        assert.equal(crc32Of(parts), crc32(whole));
      }),
    );
  });

  it("detects any single flipped bit", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 256 }), fc.nat(), (data, at) => {
        const bit = at % (data.length * 8);
        const flipped = Uint8Array.from(data);
        flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        assert.notEqual(crc32(flipped), crc32(data));
      }),
    );
  });
});
