// The calls a follower makes to its leader and the leader's answers round-trip through their
// encoding; malformed bytes from a peer are a DecodeError, never a crash; a restamped envelope
// carries the leader's time and the same command.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeEnvelope, encodeEnvelope, restampEnvelope } from "../../../src/service/command.js";
import {
  answerError,
  decodeLeaderAnswer,
  decodeLeaderCall,
  encodeLeaderAnswer,
  encodeLeaderCall,
  type LeaderAnswer,
  type LeaderCall,
} from "../../../src/service/leader-calls.js";
import { DecodeError } from "../../../src/util/bytes.js";
import { Prng } from "../../../src/util/prng.js";

describe("leader calls", () => {
  it("round-trips every call and both kinds of answer", () => {
    const calls: LeaderCall[] = [
      {
        op: "propose",
        envelope: Uint8Array.of(1, 2, 3),
        writeConcern: "majority",
        principal: { kind: "token", tokenId: "0123456789abcdef" },
      },
      { op: "propose", envelope: Uint8Array.of(4), writeConcern: "all", principal: { kind: "system" } },
      { op: "join", name: "n4", peerAddress: "127.0.0.1:7004", principal: { kind: "anonymous" } },
      { op: "remove", id: 3, principal: { kind: "system" } },
      { op: "transfer", to: 2, principal: { kind: "anonymous" } },
    ];
    for (const call of calls) assert.deepEqual(decodeLeaderCall(encodeLeaderCall(call)), call);
    // A call of the previous version (no principal) reads as anonymous.
    assert.deepEqual(decodeLeaderCall(Uint8Array.of(2, 2, 3)), {
      op: "remove",
      id: 3,
      principal: { kind: "anonymous" },
    });
    const answers: LeaderAnswer[] = [
      { ok: true, appliedIndex: 42, value: { ok: true, result: { revision: 7 }, duplicate: false } },
      { ok: true, appliedIndex: 1, value: null },
      { ok: false, code: "ERR_NOT_LEADER", message: "not the leader", details: { leaderId: 2 } },
      {
        ok: false,
        code: "ERR_WRITE_CONCERN",
        message: "durable on 2 of 3",
        details: { votersWithEntry: 2, voters: 3 },
      },
    ];
    for (const answer of answers) assert.deepEqual(decodeLeaderAnswer(encodeLeaderAnswer(answer)), answer);
  });

  it("refuses malformed calls and answers with a DecodeError only", () => {
    const prng = new Prng(7);
    for (let i = 0; i < 3_000; i++) {
      const bytes = Uint8Array.from({ length: prng.below(24) }, () => prng.below(256));
      for (const decode of [decodeLeaderCall, decodeLeaderAnswer]) {
        try {
          decode(bytes);
        } catch (error) {
          assert.ok(error instanceof DecodeError, String(error));
        }
      }
    }
  });

  it("keeps only the detail fields an error code has, of the right type", () => {
    const error = answerError({
      ok: false,
      code: "ERR_NOT_LEADER",
      message: "stepped down",
      details: { leaderId: 2, leader: { http: "http://h:1", redis: 6381, text: "h:6661" }, secret: "x" },
    });
    assert.equal(error.code, "ERR_NOT_LEADER");
    assert.deepEqual(error.details, { leaderId: 2, leader: { http: "http://h:1", text: "h:6661" } });
    const conflict = answerError({
      ok: false,
      code: "ERR_CONFLICT",
      message: "changed",
      details: { currentRevision: null, currentLastSeq: "7" },
    });
    assert.deepEqual(conflict.details, { currentRevision: null });
  });

  it("restamps an envelope with the leader's time, keeping its command and key", () => {
    const data = encodeEnvelope({
      tsMs: 1_000,
      idempotencyKey: "k",
      command: { service: "kv", command: { type: "expire", max: 10 } },
    });
    const restamped = decodeEnvelope(restampEnvelope(data, 5_000));
    assert.deepEqual(restamped, { ...decodeEnvelope(data), tsMs: 5_000 });
    assert.equal(decodeEnvelope(data).tsMs, 1_000, "the original is left alone");
  });
});
