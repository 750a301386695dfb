// Pure pieces of the transport: reconnect backoff stays within its jittered exponential bounds and
// replays from a seed; handshake and snapshot control payloads round-trip and reject truncation,
// trailing bytes and unknown values with ERR_FRAME_CORRUPT.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { backoffDelayMs } from "../../../src/transport/backoff.js";
import {
  decodeHello,
  decodeWelcome,
  encodeHello,
  encodeWelcome,
  type Hello,
  PROTOCOL_VERSION,
  type Welcome,
} from "../../../src/transport/handshake.js";
import { resolveTransportSettings } from "../../../src/transport/settings.js";
import {
  decodeSnapshotAck,
  decodeSnapshotBegin,
  decodeSnapshotEnd,
  encodeSnapshotAck,
  encodeSnapshotBegin,
  encodeSnapshotEnd,
} from "../../../src/transport/snapshot-wire.js";
import { Prng } from "../../../src/util/prng.js";

const settings = { reconnectBackoffBaseMs: 50, reconnectBackoffMaxMs: 5000 };

/** Asserts that every strict prefix of `bytes` fails to decode with ERR_FRAME_CORRUPT. */
function assertPrefixesRejected(bytes: Uint8Array, decode: (b: Uint8Array) => unknown): void {
  for (let length = 0; length < bytes.length; length++) {
    assert.throws(() => decode(bytes.subarray(0, length)), { code: "ERR_FRAME_CORRUPT" }, `prefix ${length}`);
  }
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  assert.throws(() => decode(longer), { code: "ERR_FRAME_CORRUPT" }, "trailing byte");
}

describe("reconnect backoff", () => {
  it("stays in [ceiling/2, ceiling] where the ceiling doubles up to the maximum", () => {
    fc.assert(
      fc.property(fc.nat({ max: 100 }), fc.integer(), (attempt, seed) => {
        const prng = new Prng(seed);
        const ceiling = Math.min(5000, 50 * 2 ** attempt);
        const delay = backoffDelayMs(attempt, settings, (b) => prng.below(b));
        assert.ok(delay >= Math.floor(ceiling / 2) && delay <= ceiling, `attempt ${attempt}: ${delay}`);
      }),
    );
  });

  it("is jittered (not every peer redials at once) and replays from a seed", () => {
    const draws = (seed: number) => {
      const prng = new Prng(seed);
      return Array.from({ length: 20 }, () => backoffDelayMs(6, settings, (b) => prng.below(b)));
    };
    assert.ok(new Set(draws(1)).size > 5);
    assert.deepEqual(draws(1), draws(1));
  });

  it("by default redials a link within a second however long it was down, and still gives a snapshot ten seconds to resume", () => {
    const defaults = resolveTransportSettings();
    const ceilings = (attempts: number) =>
      Array.from({ length: attempts }, (_, attempt) => backoffDelayMs(attempt, defaults, (b) => b - 1));
    // The largest draw of every attempt: a link cut by a long partition is back within 1 s of the heal.
    assert.ok(ceilings(64).every((delay) => delay <= 1_000));
    const resumeWindowMs = ceilings(defaults.snapshotResumeAttemptsMax).reduce((a, b) => a + b, 0);
    assert.ok(resumeWindowMs >= 10_000, `a broken snapshot transfer retries for ${resumeWindowMs} ms`);
  });
});

describe("handshake payloads", () => {
  const helloArb = fc.record({
    protocolVersion: fc.constant(PROTOCOL_VERSION),
    purpose: fc.constantFrom("messages" as const, "snapshot" as const),
    nodeId: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    clusterId: fc.string({ maxLength: 40 }),
  });

  it("hello round-trips and every truncation is rejected", () => {
    fc.assert(
      fc.property(helloArb, (hello: Hello) => {
        const bytes = encodeHello(hello);
        assert.deepEqual(decodeHello(bytes), { ...hello });
        assertPrefixesRejected(bytes, decodeHello);
      }),
      { numRuns: 50 },
    );
  });

  it("a hello of another protocol version decodes far enough to be refused clearly", () => {
    const hello = decodeHello(new Uint8Array([PROTOCOL_VERSION + 1, 0xff, 0xff]));
    assert.equal(hello.protocolVersion, PROTOCOL_VERSION + 1);
  });

  it("rejects an unknown purpose and a cluster id above its limit", () => {
    const bytes = encodeHello({
      protocolVersion: PROTOCOL_VERSION,
      purpose: "messages",
      nodeId: 1,
      clusterId: "c",
    });
    const bad = bytes.slice();
    bad[1] = 9;
    assert.throws(() => decodeHello(bad), { code: "ERR_FRAME_CORRUPT" });
    assert.throws(
      () =>
        encodeHello({
          protocolVersion: PROTOCOL_VERSION,
          purpose: "messages",
          nodeId: 1,
          clusterId: "x".repeat(129),
        }),
      RangeError,
    );
  });

  it("welcome round-trips, accepted or rejected with a reason", () => {
    const samples: Welcome[] = [
      { accepted: true },
      { accepted: false, reason: "identity-mismatch", detail: "certificate names node-3" },
      { accepted: false, reason: "not-member", detail: "é".repeat(600) },
    ];
    for (const welcome of samples) {
      const decoded = decodeWelcome(encodeWelcome(welcome));
      if (welcome.accepted || decoded.accepted) {
        assert.deepEqual(decoded, welcome);
        continue;
      }
      assert.equal(decoded.reason, welcome.reason);
      // Long details are cut on a character boundary to fit the limit.
      assert.ok(welcome.detail.startsWith(decoded.detail));
      assertPrefixesRejected(encodeWelcome(welcome), decodeWelcome);
    }
    assert.throws(() => decodeWelcome(new Uint8Array([99, 0, 0])), { code: "ERR_FRAME_CORRUPT" });
  });
});

describe("snapshot payloads", () => {
  it("begin, ack and end round-trip and reject truncation", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 64 }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: 0xffff_ffff }),
        fc.boolean(),
        (id, meta, offset, crc, done) => {
          const begin = encodeSnapshotBegin({ transferId: id, meta });
          assert.deepEqual(decodeSnapshotBegin(begin, 64), { transferId: id, meta });
          assertPrefixesRejected(begin, (b) => decodeSnapshotBegin(b, 64));
          const ack = encodeSnapshotAck({ consumedBytes: offset, receivedBytes: offset, done });
          assert.deepEqual(decodeSnapshotAck(ack), { consumedBytes: offset, receivedBytes: offset, done });
          assertPrefixesRejected(ack, decodeSnapshotAck);
          const end = encodeSnapshotEnd({ totalBytes: offset, crc });
          assert.deepEqual(decodeSnapshotEnd(end), { totalBytes: offset, crc });
          assertPrefixesRejected(end, decodeSnapshotEnd);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("refuses snapshot meta above its limit", () => {
    const begin = encodeSnapshotBegin({ transferId: 1, meta: new Uint8Array(65) });
    assert.throws(() => decodeSnapshotBegin(begin, 64), { code: "ERR_FRAME_CORRUPT" });
  });
});

describe("transport settings", () => {
  it("shrinks snapshot limits with a small frame limit and refuses inconsistent ones", () => {
    const small = resolveTransportSettings({ frameBytesMax: 4096 });
    assert.ok(small.snapshotChunkBytesMax <= 1024 && small.snapshotMetaBytesMax <= 1024);
    assert.throws(
      () => resolveTransportSettings({ frameBytesMax: 4096, snapshotChunkBytesMax: 8192 }),
      RangeError,
    );
    assert.throws(() => resolveTransportSettings({ peerQueueMessagesMax: 0 }), RangeError);
    assert.throws(
      () => resolveTransportSettings({ reconnectBackoffBaseMs: 10, reconnectBackoffMaxMs: 5 }),
      RangeError,
    );
  });
});
