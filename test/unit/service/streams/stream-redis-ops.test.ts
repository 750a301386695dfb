// Stream operations the Redis command list needs, as the state machine applies them: an append that
// creates its stream (XADD), claims of idle messages in flight (XCLAIM, XAUTOCLAIM), and reads by
// message id in either direction (XRANGE, XREVRANGE). Commands go through the real envelope codec.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryState } from "../../../../src/service/state.js";
import {
  type ClaimTarget,
  defaultStreamMachineLimits,
  getGroupMeta,
  getMessage,
  getStreamMeta,
  listPending,
  type StreamCommand,
} from "../../../../src/service/streams/index.js";
import { ByteWriter, utf8 } from "../../../../src/util/bytes.js";
import { config, run } from "./helpers.js";

const T = 1_700_000_000_000;

const appendCreating = (name: string, payload: string, settings = config()): StreamCommand => ({
  type: "append",
  name,
  payload: utf8(payload),
  headers: [],
  createWith: settings,
});

describe("streams: an append that creates its stream", () => {
  it("creates a missing stream with the given settings and appends, in one entry", () => {
    const s = new MemoryState();
    const result = run(s, appendCreating("s", "a", config({ maxMessages: 5 })), T);
    assert.deepEqual(result, { kind: "streams.append", ok: true, seq: 1, id: `${T}-0`, duplicate: false });
    const meta = getStreamMeta(s, "s");
    assert.equal(meta?.config.maxMessages, 5);
    assert.equal(meta?.createdMs, T);
  });

  it("leaves an existing stream's settings alone", () => {
    const s = new MemoryState();
    run(s, { type: "create", name: "s", config: config({ maxMessages: 2 }) }, T);
    assert.equal(run(s, appendCreating("s", "a", config({ maxMessages: 9 })), T).ok, true);
    assert.equal(getStreamMeta(s, "s")?.config.maxMessages, 2);
    assert.equal(getStreamMeta(s, "s")?.lastSeq, 1);
  });

  it("without it, a missing stream is ERR_NOT_FOUND; at the stream limit, ERR_LIMIT and nothing changes", () => {
    const s = new MemoryState();
    const missing = run(s, { type: "append", name: "s", payload: utf8("a"), headers: [] }, T);
    assert.equal(!missing.ok && missing.code, "ERR_NOT_FOUND");
    // The cluster holds as many streams as it may (set directly: creating 10,000 proves nothing more).
    s.put(
      "meta",
      utf8("streams.count"),
      new ByteWriter(8).u64(defaultStreamMachineLimits.streamsMax).finish(),
    );
    const refused = run(s, appendCreating("t", "a"), T);
    assert.equal(refused.kind, "streams.append");
    assert.equal(!refused.ok && refused.code, "ERR_LIMIT");
    assert.equal(getStreamMeta(s, "t"), undefined);
  });
});

describe("consumer groups: claims of idle messages", () => {
  const groupConfig = {
    ackWaitMs: 10_000,
    maxDeliveries: 0,
    deadLetterStream: "s.g.dlq",
    maxAckPending: 100,
  };

  /** A stream of `count` messages and a group that handed them all to consumer c1 at time T. */
  function delivered(count: number): MemoryState {
    const s = new MemoryState();
    run(s, { type: "create", name: "s", config: config() }, T);
    for (let i = 0; i < count; i++)
      run(s, { type: "append", name: "s", payload: utf8(`m${i}`), headers: [] }, T);
    run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: groupConfig },
      T,
    );
    run(s, { type: "fetch", stream: "s", group: "g", consumer: "c1", max: count }, T);
    return s;
  }
  const claim = (minIdleMs: number, target: ClaimTarget, justId = false): StreamCommand => ({
    type: "claim",
    stream: "s",
    group: "g",
    consumer: "c2",
    minIdleMs,
    target,
    justId,
  });
  const holder = (s: MemoryState, seq: number) => {
    const stream = getStreamMeta(s, "s");
    const group = stream === undefined ? undefined : getGroupMeta(s, stream, "g");
    return group === undefined ? undefined : listPending(s, group, 100).find((p) => p.seq === seq);
  };

  it("takes named messages idle long enough, counting a delivery and restarting the deadline", () => {
    const s = delivered(3);
    const early = run(s, claim(500, { kind: "seqs", seqs: [1, 2] }), T + 499);
    assert.deepEqual(early, {
      kind: "streams.claim",
      ok: true,
      claimed: [],
      deleted: [],
      deletedIds: [],
      next: 0,
    });
    assert.equal(holder(s, 1)?.consumer, "c1");
    const taken = run(s, claim(500, { kind: "seqs", seqs: [1, 2, 9] }), T + 500);
    assert.deepEqual(taken, {
      kind: "streams.claim",
      ok: true,
      claimed: [
        { seq: 1, deliveries: 2 },
        { seq: 2, deliveries: 2 },
      ],
      deleted: [],
      deletedIds: [],
      next: 0,
    });
    assert.deepEqual(holder(s, 1), {
      seq: 1,
      consumer: "c2",
      availableAtMs: T + 500 + groupConfig.ackWaitMs,
      deliveries: 2,
      deliveredAtMs: T + 500,
    });
    assert.equal(holder(s, 3)?.consumer, "c1", "a message not named stays");
    // Claimed just now: idle again from the claim's time.
    assert.equal(run(s, claim(500, { kind: "seqs", seqs: [1] }), T + 600).ok, true);
    assert.equal(holder(s, 1)?.deliveredAtMs, T + 500);
  });

  it("justId leaves the delivery count alone", () => {
    const s = delivered(1);
    const result = run(s, claim(0, { kind: "seqs", seqs: [1] }, true), T + 1);
    assert.equal(result.ok && result.kind === "streams.claim" && result.claimed[0]?.deliveries, 1);
  });

  it("a scan claims up to count and says where to continue; 0 once it reached the end", () => {
    const s = delivered(5);
    const first = run(s, claim(0, { kind: "scan", fromSeq: 0, count: 2 }), T + 1);
    assert.ok(first.ok && first.kind === "streams.claim");
    assert.deepEqual(
      first.claimed.map((d) => d.seq),
      [1, 2],
    );
    assert.equal(first.next, 3);
    const rest = run(s, claim(0, { kind: "scan", fromSeq: first.next, count: 10 }), T + 1);
    assert.ok(rest.ok && rest.kind === "streams.claim");
    assert.deepEqual(
      rest.claimed.map((d) => d.seq),
      [3, 4, 5],
    );
    assert.equal(rest.next, 0);
  });

  it("drops messages that retention removed and reports them as deleted", () => {
    const s = delivered(3);
    run(s, { type: "update", name: "s", changes: { maxMessages: 1 } }, T);
    const result = run(s, claim(0, { kind: "scan", fromSeq: 0, count: 10 }), T + 1);
    assert.ok(result.ok && result.kind === "streams.claim");
    assert.deepEqual(result.deleted, [1, 2]);
    assert.deepEqual(
      result.claimed.map((d) => d.seq),
      [3],
    );
    const stream = getStreamMeta(s, "s");
    assert.equal(stream === undefined ? undefined : getGroupMeta(s, stream, "g")?.pending, 1);
  });

  it("a delete with keepPending (XDEL) leaves its messages in flight by id until a claim drops them", () => {
    const s = delivered(4);
    const ids = [1, 2, 3, 4].map((seq) => {
      const stream = getStreamMeta(s, "s");
      return stream === undefined ? "" : (getMessage(s, stream, seq)?.id ?? "");
    });
    run(s, { type: "message-delete", name: "s", seqs: [2, 3], keepPending: true }, T);
    run(s, { type: "message-delete", name: "s", seqs: [4] }, T);
    const stream = getStreamMeta(s, "s");
    const group = stream === undefined ? undefined : getGroupMeta(s, stream, "g");
    assert.ok(group !== undefined);
    // 2 and 3 stay in flight with their ids; 4, deleted without keepPending, is forgotten.
    assert.deepEqual(
      listPending(s, group, 10).map((p) => [p.seq, p.deletedId]),
      [
        [1, undefined],
        [2, ids[1]],
        [3, ids[2]],
      ],
    );
    assert.equal(group.pending, 3);
    // Reading c1's history reports them and leaves them; COUNT counts them.
    const history = run(
      s,
      { ...claim(0, { kind: "scan", fromSeq: 0, count: 2 }), consumer: "c1", ownOnly: true },
      T,
    );
    assert.ok(history.ok && history.kind === "streams.claim");
    assert.deepEqual(
      history.claimed.map((d) => d.seq),
      [1],
    );
    assert.deepEqual(history.deleted, [2]);
    assert.deepEqual(history.deletedIds, [ids[1]]);
    assert.equal(listPending(s, group, 10).length, 3);
    // A claim drops them whatever their idle time, and names them.
    const claimed = run(s, claim(60_000, { kind: "scan", fromSeq: 0, count: 10 }), T + 1);
    assert.ok(claimed.ok && claimed.kind === "streams.claim");
    assert.deepEqual(claimed.claimed, []);
    assert.deepEqual(claimed.deletedIds, [ids[1], ids[2]]);
    assert.deepEqual(
      listPending(s, group, 10).map((p) => p.seq),
      [1],
    );
    const after = getStreamMeta(s, "s");
    assert.equal(after === undefined ? undefined : getGroupMeta(s, after, "g")?.pending, 1);
  });

  it("judges the idle time of a record the previous release wrote by its deadline less the ack wait", () => {
    const s = delivered(1);
    const stream = getStreamMeta(s, "s");
    const group = stream === undefined ? undefined : getGroupMeta(s, stream, "g");
    assert.ok(group !== undefined);
    // The previous release's record: deadline, deliveries and consumer, no delivery time.
    const key = new ByteWriter(16).u64(group.id).u64(1).finish();
    s.put(
      "consumer-pending",
      key,
      new ByteWriter()
        .u64(T + groupConfig.ackWaitMs)
        .varint(1)
        .string("c1")
        .finish(),
    );
    assert.equal(holder(s, 1)?.deliveredAtMs, undefined);
    const early = run(s, claim(1000, { kind: "seqs", seqs: [1] }), T + 999);
    assert.ok(early.ok && early.kind === "streams.claim" && early.claimed.length === 0);
    const taken = run(s, claim(1000, { kind: "seqs", seqs: [1] }), T + 1000);
    assert.ok(taken.ok && taken.kind === "streams.claim" && taken.claimed.length === 1);
  });

  it("a missing stream or group is ERR_NOT_FOUND", () => {
    const s = new MemoryState();
    const result = run(s, claim(0, { kind: "seqs", seqs: [1] }), T);
    assert.equal(!result.ok && result.code, "ERR_NOT_FOUND");
  });
});
