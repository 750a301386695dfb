// The frame layer as a parser of untrusted bytes: frames round-trip through any chunking (one byte
// at a time, random splits from fast-check), the size limit is enforced from the header alone, and
// corrupting any header field or payload byte is reported, never decoded into a different frame.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  concatBytes,
  encodeFrame,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameDecoder,
  FrameType,
} from "../../../src/transport/frame.js";

const MAX = 64 * 1024;
const types = Object.values(FrameType);

function wire(type: FrameType, group: number, payload: Uint8Array): Uint8Array {
  return concatBytes(encodeFrame(type, group, payload, MAX));
}

/** Feeds `bytes` cut at the given offsets and collects every frame and the final error. */
function decodeSplit(bytes: Uint8Array, cuts: number[], max = MAX) {
  const decoder = new FrameDecoder(max);
  const frames: Frame[] = [];
  let error: unknown;
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    // Copy each chunk so a decoder that kept a view into a reused buffer would be caught.
    const result = decoder.push(bytes.slice(from, cut));
    frames.push(...result.frames.map((f) => ({ ...f, payload: f.payload.slice() })));
    error ??= result.error;
    from = cut;
  }
  return { frames, error, decoder };
}

const frameArb = fc.record({
  type: fc.constantFrom(...types),
  group: fc.nat({ max: 0xffff_ffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

describe("frame encoding and decoding", () => {
  it("round-trips one frame fed a single byte at a time", () => {
    const payload = new TextEncoder().encode("hello, raft");
    const bytes = wire(FrameType.message, 7, payload);
    assert.equal(bytes.length, FRAME_HEADER_BYTES + payload.length);
    const decoder = new FrameDecoder(MAX);
    const frames: Frame[] = [];
    for (let i = 0; i < bytes.length; i++) {
      const result = decoder.push(bytes.subarray(i, i + 1));
      assert.equal(result.error, undefined);
      // Nothing comes out before the last byte.
      assert.equal(result.frames.length, i === bytes.length - 1 ? 1 : 0);
      frames.push(...result.frames);
    }
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.type, FrameType.message);
    assert.equal(frames[0]?.group, 7);
    assert.deepEqual(frames[0]?.payload, payload);
    assert.equal(decoder.bufferedBytes, 0);
  });

  it("round-trips many random frames under random chunk boundaries", () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (specs, cuts) => {
          const bytes = concatBytes(specs.map((s) => wire(s.type, s.group, s.payload)));
          const { frames, error } = decodeSplit(
            bytes,
            cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)),
          );
          assert.equal(error, undefined);
          assert.deepEqual(
            frames.map((f) => [f.type, f.group, [...f.payload]]),
            specs.map((s) => [s.type, s.group, [...s.payload]]),
          );
        },
      ),
    );
  });

  it("round-trips frames fed one byte at a time", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 4 }), (specs) => {
        const bytes = concatBytes(specs.map((s) => wire(s.type, s.group, s.payload)));
        const cuts = Array.from({ length: bytes.length }, (_, i) => i);
        const { frames, error } = decodeSplit(bytes, cuts);
        assert.equal(error, undefined);
        assert.deepEqual(
          frames.map((f) => [...f.payload]),
          specs.map((s) => [...s.payload]),
        );
      }),
      { numRuns: 50 },
    );
  });

  it("writes a multi-part payload exactly like the same bytes in one part", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 5 }), (parts) => {
        assert.deepEqual(
          concatBytes(encodeFrame(FrameType.message, 3, parts, MAX)),
          concatBytes(encodeFrame(FrameType.message, 3, concatBytes(parts), MAX)),
        );
      }),
    );
  });

  it("accepts a frame of exactly frameBytesMax and refuses one byte more, before buffering it", () => {
    const max = 100;
    const exact = concatBytes(
      encodeFrame(FrameType.message, 1, new Uint8Array(max - FRAME_HEADER_BYTES), max),
    );
    assert.equal(decodeSplit(exact, [], max).frames.length, 1);
    assert.throws(
      () => encodeFrame(FrameType.message, 1, new Uint8Array(max - FRAME_HEADER_BYTES + 1), max),
      { code: "ERR_FRAME_TOO_LARGE" },
    );
    // A peer that declares a 4 GiB frame is refused on its header alone: nothing is buffered.
    const header = concatBytes(encodeFrame(FrameType.message, 1, new Uint8Array(0), max)).slice(
      0,
      FRAME_HEADER_BYTES,
    );
    new DataView(header.buffer).setUint32(8, 0xffff_ffff);
    const decoder = new FrameDecoder(max);
    const result = decoder.push(header);
    assert.equal(result.error?.code, "ERR_FRAME_TOO_LARGE");
    assert.equal(decoder.bufferedBytes, 0);
    // And the decoder stays failed: the stream is out of step.
    assert.equal(decoder.push(exact).error?.code, "ERR_FRAME_TOO_LARGE");
    assert.equal(decoder.push(exact).frames.length, 0);
  });

  it("delivers the frames before a corrupt one, then stops", () => {
    const good = wire(FrameType.message, 1, new Uint8Array([1, 2, 3]));
    const bad = wire(FrameType.message, 1, new Uint8Array([4, 5, 6]));
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0x01;
    const result = new FrameDecoder(MAX).push(concatBytes([good, bad, good]));
    assert.equal(result.frames.length, 1);
    assert.equal(result.error?.code, "ERR_FRAME_CORRUPT");
  });

  it("reports a corruption of any header byte or payload byte", () => {
    const payload = new Uint8Array(40).map((_, i) => i);
    const original = wire(FrameType.snapshotChunk, 0x01020304, payload);
    // A trailing frame so that a corrupted length that asks for more bytes is still resolved.
    const trailer = wire(FrameType.message, 9, new Uint8Array(200));
    for (let at = 0; at < original.length; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bytes = original.slice();
        bytes[at] = (bytes[at] ?? 0) ^ mask;
        const { frames, error } = decodeSplit(concatBytes([bytes, trailer]), []);
        const first = frames[0];
        // Never silently decoded into something else.
        const same =
          first !== undefined &&
          first.type === FrameType.snapshotChunk &&
          first.group === 0x01020304 &&
          Buffer.from(first.payload).equals(Buffer.from(payload));
        assert.ok(!same, `corruption at byte ${at} mask ${mask} went unnoticed`);
        assert.ok(frames.length === 0, `corruption at byte ${at} mask ${mask} produced a frame`);
        assert.ok(
          error !== undefined || at === 8 || at === 9 || at === 10 || at === 11,
          `corruption at byte ${at} mask ${mask} gave no error`,
        );
        if (error !== undefined) {
          const code = (error as { code?: string }).code;
          assert.ok(
            code === "ERR_FRAME_CORRUPT" || code === "ERR_FRAME_TOO_LARGE" || code === "ERR_PROTOCOL_VERSION",
            `unexpected code ${code}`,
          );
        }
        if (at === 1) assert.equal((error as { code?: string }).code, "ERR_PROTOCOL_VERSION");
      }
    }
  });

  it("rejects a construction limit smaller than a header", () => {
    assert.throws(() => new FrameDecoder(FRAME_HEADER_BYTES - 1), RangeError);
  });
});
