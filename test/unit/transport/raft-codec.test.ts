// The Raft message codec: every message round-trips, and every truncation, extension or random
// byte string decodes to an error value, never an exception.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { groupId, logIndex, type Message, nodeId, term } from "../../../src/raft/index.js";
import { decodeRaftMessage, encodeRaftMessage } from "../../../src/transport/raft-codec.js";

const idx = fc.nat({ max: 2 ** 40 }).map(logIndex);
const trm = fc.nat({ max: 2 ** 30 }).map(term);
const node = fc.integer({ min: 1, max: 2 ** 31 }).map(nodeId);
const header = fc.record({ groupId: fc.nat(1000).map(groupId), from: node, to: node, term: trm });
const entryBody = fc.record({
  term: trm,
  kind: fc.constantFrom("normal" as const, "conf-change" as const),
  data: fc.uint8Array({ maxLength: 40 }),
});

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc
    .tuple(header, idx, trm, idx, fc.array(entryBody, { maxLength: 5 }))
    .map(([h, prevLogIndex, prevLogTerm, commitIndex, bodies]) => ({
      ...h,
      type: "append" as const,
      prevLogIndex,
      prevLogTerm,
      commitIndex,
      entries: bodies.map((b, i) => ({ ...b, index: logIndex(prevLogIndex + 1 + i) })),
    })),
  fc
    .tuple(header, fc.boolean(), idx, idx, trm, fc.boolean())
    .map(([h, reject, index, hintIndex, hintTerm, entriesLost]) => ({
      ...h,
      type: "append-response" as const,
      reject,
      index,
      hintIndex,
      hintTerm,
      entriesLost,
    })),
  fc
    .tuple(header, idx, fc.nat())
    .map(([h, commitIndex, readRound]) => ({ ...h, type: "heartbeat" as const, commitIndex, readRound })),
  fc
    .tuple(header, fc.nat())
    .map(([h, readRound]) => ({ ...h, type: "heartbeat-response" as const, readRound })),
  fc
    .tuple(header, fc.boolean(), fc.boolean(), idx, trm)
    .map(([h, preVote, transfer, lastLogIndex, lastLogTerm]) => ({
      ...h,
      type: "vote-request" as const,
      preVote,
      transfer,
      lastLogIndex,
      lastLogTerm,
    })),
  fc
    .tuple(header, fc.boolean(), fc.boolean())
    .map(([h, preVote, reject]) => ({ ...h, type: "vote-response" as const, preVote, reject })),
  fc
    .tuple(header, idx, trm, fc.array(node, { maxLength: 5 }), fc.array(node, { maxLength: 3 }))
    .map(([h, index, t, voters, learners]) => ({
      ...h,
      type: "snapshot" as const,
      snapshot: { index, term: t, conf: { voters, learners } },
    })),
  header.map((h) => ({ ...h, type: "timeout-now" as const })),
  fc
    .tuple(header, fc.string({ maxLength: 20 }))
    .map(([h, context]) => ({ ...h, type: "read-index" as const, context })),
  fc
    .tuple(header, fc.string({ maxLength: 20 }), idx)
    .map(([h, context, index]) => ({ ...h, type: "read-index-response" as const, context, index })),
);

describe("Raft message codec", () => {
  it("round-trips every message type", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const decoded = decodeRaftMessage(encodeRaftMessage(m));
        assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
        assert.deepEqual(decoded.message, m);
      }),
      { numRuns: 500 },
    );
  });

  it("returns an error for every truncation and for trailing bytes", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeRaftMessage(m);
        for (let cut = 0; cut < bytes.length; cut++)
          assert.equal(decodeRaftMessage(bytes.subarray(0, cut)).ok, false);
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        assert.equal(decodeRaftMessage(longer).ok, false);
      }),
      { numRuns: 200 },
    );
  });

  it("never throws on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        decodeRaftMessage(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses node id 0 and unknown types", () => {
    assert.deepEqual(decodeRaftMessage(Uint8Array.of(8, 1, 0, 2, 1)), { ok: false, error: "node id 0" });
    assert.deepEqual(decodeRaftMessage(Uint8Array.of(99, 1, 1, 2, 1)), {
      ok: false,
      error: "unknown message type 99",
    });
  });
});
