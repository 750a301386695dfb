// The streams and consumer-groups state machine, command by command: dense sequences and ids,
// deduplication, conditional appends, retention by count, bytes and age (by leader time), settings
// updates that lower limits, single-message deletes, every consumer transition, dead letters,
// idempotent fetches, deletion in bounded sweeps, and snapshot round trips. Commands go through the
// real envelope codec, so encoding is covered too.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyEnvelope, decodeEnvelope, encodeEnvelope } from "../../../../src/service/command.js";
import { MemoryState } from "../../../../src/service/state.js";
import {
  applyStream,
  type Delivery,
  defaultStreamMachineLimits,
  type GroupConfig,
  getGroupMeta,
  getMessage,
  getStreamMeta,
  listPending,
  messageCount,
  readMessages,
  type StreamCommand,
  type StreamMeta,
  type StreamResult,
  seqAtTime,
  streamSweepDue,
} from "../../../../src/service/streams/index.js";
import { append, config, copyState, dumpState, run } from "./helpers.js";

const T = 1_700_000_000_000;
const groupConfig = (overrides: Partial<GroupConfig> = {}): GroupConfig => ({
  ackWaitMs: 1000,
  maxDeliveries: 3,
  deadLetterStream: "s.g.dlq",
  maxAckPending: 100,
  ...overrides,
});

function fresh(streamConfig = config()): MemoryState {
  const s = new MemoryState();
  assert.deepEqual(run(s, { type: "create", name: "s", config: streamConfig }, T), {
    ok: true,
    kind: "streams.create",
    created: true,
  });
  return s;
}

function seqs(result: StreamResult): number[] {
  assert.ok(result.ok && result.kind === "streams.fetch", JSON.stringify(result));
  return result.messages.map((m: Delivery) => m.seq);
}

function meta(s: MemoryState, name = "s"): StreamMeta {
  const m = getStreamMeta(s, name);
  assert.ok(m !== undefined, `stream ${name} exists`);
  return m;
}

function payloads(s: MemoryState, name: string): string[] {
  const meta = getStreamMeta(s, name);
  assert.ok(meta !== undefined);
  return readMessages(s, meta, 1, 1000, 1 << 30).messages.map((m) => new TextDecoder().decode(m.payload));
}

const fetch = (consumer: string, max = 10): StreamCommand => ({
  type: "fetch",
  stream: "s",
  group: "g",
  consumer,
  max,
});
const settle = (action: "ack" | "nack" | "extend" | "term", list: number[], delayMs = 0): StreamCommand => ({
  type: "settle",
  stream: "s",
  group: "g",
  action,
  seqs: list,
  delayMs,
});

describe("streams: create, append, read", () => {
  it("creates idempotently and refuses other settings for an existing name", () => {
    const s = fresh();
    assert.deepEqual(run(s, { type: "create", name: "s", config: config() }, T), {
      ok: true,
      kind: "streams.create",
      created: false,
    });
    const other = run(s, { type: "create", name: "s", config: config({ maxMessages: 5 }) }, T);
    assert.equal(other.ok, false);
    assert.equal(!other.ok && other.code, "ERR_CONFLICT");
  });

  it("numbers messages 1, 2, 3 with monotonic <ms>-<n> ids from leader time", () => {
    const s = fresh();
    assert.deepEqual(run(s, append("s", "a"), T), {
      ok: true,
      kind: "streams.append",
      seq: 1,
      id: `${T}-0`,
      duplicate: false,
    });
    assert.deepEqual(run(s, append("s", "b"), T), {
      ok: true,
      kind: "streams.append",
      seq: 2,
      id: `${T}-1`,
      duplicate: false,
    });
    // A new leader whose clock is behind still produces increasing ids.
    assert.deepEqual(run(s, append("s", "c"), T - 500), {
      ok: true,
      kind: "streams.append",
      seq: 3,
      id: `${T}-2`,
      duplicate: false,
    });
    assert.deepEqual(run(s, append("s", "d"), T + 7), {
      ok: true,
      kind: "streams.append",
      seq: 4,
      id: `${T + 7}-0`,
      duplicate: false,
    });
    assert.deepEqual(payloads(s, "s"), ["a", "b", "c", "d"]);
  });

  it("keeps headers and key, and reads by sequence and by time", () => {
    const s = fresh();
    run(
      s,
      { type: "append", name: "s", payload: new Uint8Array([0, 255]), headers: [["h", "v"]], key: "k" },
      T,
    );
    run(s, append("s", "later"), T + 100);
    const meta = getStreamMeta(s, "s");
    assert.ok(meta !== undefined);
    const m = getMessage(s, meta, 1);
    assert.deepEqual(m?.headers, [["h", "v"]]);
    assert.equal(m?.key, "k");
    assert.deepEqual([...(m?.payload ?? [])], [0, 255]);
    assert.equal(seqAtTime(s, meta, T + 1), 2);
    assert.equal(seqAtTime(s, meta, T + 101), 3);
    const page = readMessages(s, meta, 2, 10, 1000);
    assert.deepEqual(
      page.messages.map((x) => x.seq),
      [2],
    );
    assert.equal(page.next, 3);
  });

  it("refuses appends to a missing stream and messages over the stream's size limit", () => {
    const s = fresh(config({ messageBytesMax: 4 }));
    const missing = run(s, append("nope", "x"), T);
    assert.equal(!missing.ok && missing.code, "ERR_NOT_FOUND");
    const big = run(s, append("s", "12345"), T);
    assert.equal(!big.ok && big.code, "ERR_TOO_LARGE");
    assert.equal(getStreamMeta(s, "s")?.lastSeq, 0);
  });
});

describe("streams: deduplication and conditional appends", () => {
  it("answers a repeated message id within the window with the original sequence", () => {
    const s = fresh(config({ dedupeWindowMs: 1000 }));
    run(s, append("s", "a", { msgId: "m1" }), T);
    run(s, append("s", "b"), T + 1);
    assert.deepEqual(run(s, append("s", "a-again", { msgId: "m1" }), T + 999), {
      ok: true,
      kind: "streams.append",
      seq: 1,
      id: `${T}-0`,
      duplicate: true,
    });
    assert.deepEqual(payloads(s, "s"), ["a", "b"]);
    // Past the window the id is new again.
    const later = run(s, append("s", "c", { msgId: "m1" }), T + 1000);
    assert.ok(later.ok && later.kind === "streams.append" && later.seq === 3 && !later.duplicate);
  });

  it("forgets expired message ids in bounded sweeps", () => {
    const s = fresh(config({ dedupeWindowMs: 1000 }));
    for (let i = 0; i < 5; i++) run(s, append("s", "x", { msgId: `m${i}` }), T);
    assert.equal(streamSweepDue(s, T + 10), false);
    assert.equal(streamSweepDue(s, T + 1000), true);
    assert.deepEqual(run(s, { type: "sweep", max: 3 }, T + 1000), {
      ok: true,
      kind: "streams.sweep",
      removed: 3,
    });
    assert.deepEqual(run(s, { type: "sweep", max: 3 }, T + 1000), {
      ok: true,
      kind: "streams.sweep",
      removed: 2,
    });
    assert.equal(s.size("stream-dedupe"), 0);
    assert.equal(s.size("stream-dedupe-ttl"), 0);
    assert.equal(streamSweepDue(s, T + 1000), false);
  });

  it("appends only at the expected last sequence", () => {
    const s = fresh();
    assert.ok(run(s, append("s", "a", { expectedLastSeq: 0 }), T).ok);
    const stale = run(s, append("s", "b", { expectedLastSeq: 0 }), T);
    assert.deepEqual(stale, {
      kind: "streams.append",
      ok: false,
      code: "ERR_CONFLICT",
      message: "stream s is at sequence 1, not 0",
      details: { currentLastSeq: 1 },
    });
    assert.ok(run(s, append("s", "b", { expectedLastSeq: 1 }), T).ok);
    assert.deepEqual(payloads(s, "s"), ["a", "b"]);
  });

  it("a retried conditional append with its message id gets the original answer, not a conflict", () => {
    const s = fresh();
    run(s, append("s", "a", { msgId: "x", expectedLastSeq: 0 }), T);
    const retry = run(s, append("s", "a", { msgId: "x", expectedLastSeq: 0 }), T + 1);
    assert.ok(retry.ok && retry.kind === "streams.append" && retry.duplicate && retry.seq === 1);
  });
});

describe("streams: retention", () => {
  it("drops the oldest messages beyond maxMessages, sequences never reused", () => {
    const s = fresh(config({ maxMessages: 2 }));
    for (const p of ["a", "b", "c", "d"]) run(s, append("s", p), T);
    assert.deepEqual(payloads(s, "s"), ["c", "d"]);
    const meta = getStreamMeta(s, "s");
    assert.equal(meta?.firstSeq, 3);
    assert.equal(meta?.lastSeq, 4);
    assert.equal(meta?.bytes, 2);
  });

  it("with discard new, refuses messages once full", () => {
    const s = fresh(config({ maxMessages: 2, discard: "new" }));
    run(s, append("s", "a"), T);
    run(s, append("s", "b"), T);
    const full = run(s, append("s", "c"), T);
    assert.equal(!full.ok && full.code, "ERR_STREAM_FULL");
    assert.deepEqual(payloads(s, "s"), ["a", "b"]);
  });

  it("keeps within maxBytes by dropping the oldest", () => {
    const s = fresh(config({ maxBytes: 10 }));
    run(s, append("s", "aaaa"), T);
    run(s, append("s", "bbbb"), T);
    run(s, append("s", "cccc"), T);
    assert.deepEqual(payloads(s, "s"), ["bbbb", "cccc"]);
    assert.equal(getStreamMeta(s, "s")?.bytes, 8);
  });

  it("drops messages older than maxAge by leader time, on append and in sweeps", () => {
    const s = fresh(config({ maxAgeMs: 1000 }));
    run(s, append("s", "old"), T);
    run(s, append("s", "mid"), T + 500);
    assert.equal(streamSweepDue(s, T + 999), false);
    assert.equal(streamSweepDue(s, T + 1000), true);
    run(s, append("s", "new"), T + 1200);
    assert.deepEqual(payloads(s, "s"), ["mid", "new"]);
    run(s, { type: "sweep", max: 100 }, T + 1500);
    assert.deepEqual(payloads(s, "s"), ["new"]);
    assert.equal(getStreamMeta(s, "s")?.firstSeq, 3);
  });
});

describe("consumer groups", () => {
  function withGroup(
    messages: number,
    gc: Partial<GroupConfig> = {},
    startAt: StreamCommand & { type: "group-create" } extends { startAt: infer S } ? S : never = {
      kind: "first",
    },
  ): MemoryState {
    const s = fresh();
    for (let i = 1; i <= messages; i++) run(s, append("s", `m${i}`), T + i);
    const created = run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt, config: groupConfig(gc) },
      T + 100,
    );
    assert.deepEqual(created, { ok: true, kind: "streams.group-create", created: true });
    return s;
  }

  it("starts at first, last, new, a sequence or a time", () => {
    const nextSeqOf = (startAt: Parameters<typeof withGroup>[2]) => {
      const s = withGroup(5, {}, startAt);
      const meta = getStreamMeta(s, "s");
      assert.ok(meta !== undefined);
      return getGroupMeta(s, meta, "g")?.nextSeq;
    };
    assert.equal(nextSeqOf({ kind: "first" }), 1);
    assert.equal(nextSeqOf({ kind: "last" }), 5);
    assert.equal(nextSeqOf({ kind: "new" }), 6);
    assert.equal(nextSeqOf({ kind: "seq", seq: 3 }), 3);
    assert.equal(nextSeqOf({ kind: "time", timeMs: T + 4 }), 4);
  });

  it("hands each message to one consumer at a time and records holder, deadline and count", () => {
    const s = withGroup(3);
    assert.deepEqual(seqs(run(s, fetch("c1", 2), T + 200)), [1, 2]);
    assert.deepEqual(seqs(run(s, fetch("c2", 5), T + 200)), [3]);
    assert.deepEqual(seqs(run(s, fetch("c2", 5), T + 300)), []);
    const meta = getStreamMeta(s, "s");
    assert.ok(meta !== undefined);
    const group = getGroupMeta(s, meta, "g");
    assert.ok(group !== undefined);
    assert.deepEqual(listPending(s, group, 10), [
      { seq: 1, consumer: "c1", availableAtMs: T + 1200, deliveries: 1, deliveredAtMs: T + 200 },
      { seq: 2, consumer: "c1", availableAtMs: T + 1200, deliveries: 1, deliveredAtMs: T + 200 },
      { seq: 3, consumer: "c2", availableAtMs: T + 1200, deliveries: 1, deliveredAtMs: T + 200 },
    ]);
    assert.equal(group.pending, 3);
  });

  it("redelivers an unacknowledged message once its ack deadline has passed, by leader time", () => {
    const s = withGroup(1);
    seqs(run(s, fetch("c1"), T + 200));
    assert.deepEqual(seqs(run(s, fetch("c2"), T + 1199)), []);
    const again = run(s, fetch("c2"), T + 1200);
    assert.ok(again.ok && again.kind === "streams.fetch");
    assert.deepEqual(
      again.messages.map((m) => [m.seq, m.deliveries]),
      [[1, 2]],
    );
  });

  it("ack settles; acking again reports not pending", () => {
    const s = withGroup(2);
    seqs(run(s, fetch("c1"), T + 200));
    assert.deepEqual(run(s, settle("ack", [1]), T + 300), {
      ok: true,
      kind: "streams.settle",
      settled: [1],
      notPending: [],
    });
    assert.deepEqual(run(s, settle("ack", [1, 9]), T + 300), {
      ok: true,
      kind: "streams.settle",
      settled: [],
      notPending: [1, 9],
    });
    // Acked messages are never redelivered, unacked ones are.
    assert.deepEqual(seqs(run(s, fetch("c1"), T + 5000)), [2]);
  });

  it("nack releases a message now or after a delay", () => {
    const s = withGroup(2);
    seqs(run(s, fetch("c1"), T + 200));
    run(s, settle("nack", [1]), T + 300);
    run(s, settle("nack", [2], 500), T + 300);
    assert.deepEqual(seqs(run(s, fetch("c2"), T + 301)), [1]);
    assert.deepEqual(seqs(run(s, fetch("c2"), T + 800)), [2]);
  });

  it("extend pushes the deadline out by the ack wait", () => {
    const s = withGroup(1);
    seqs(run(s, fetch("c1"), T + 200));
    run(s, settle("extend", [1]), T + 1000);
    assert.deepEqual(seqs(run(s, fetch("c2"), T + 1500)), []);
    assert.deepEqual(seqs(run(s, fetch("c2"), T + 2000)), [1]);
  });

  it("moves a message past its delivery limit to the dead-letter stream exactly once", () => {
    const s = withGroup(1, { maxDeliveries: 2 });
    assert.deepEqual(seqs(run(s, fetch("c"), T + 1000)), [1]);
    assert.deepEqual(seqs(run(s, fetch("c"), T + 2000)), [1]);
    assert.deepEqual(seqs(run(s, fetch("c"), T + 3000)), []);
    assert.deepEqual(seqs(run(s, fetch("c"), T + 9000)), []);
    assert.deepEqual(payloads(s, "s.g.dlq"), ["m1"]);
    const dlq = getStreamMeta(s, "s.g.dlq");
    assert.ok(dlq !== undefined);
    assert.deepEqual(getMessage(s, dlq, 1)?.headers, [
      ["cairn-dlq-reason", "max-deliveries"],
      ["cairn-dlq-deliveries", "2"],
      ["cairn-dlq-stream", "s"],
      ["cairn-dlq-group", "g"],
      ["cairn-dlq-seq", "1"],
    ]);
    const meta = getStreamMeta(s, "s");
    assert.ok(meta !== undefined);
    const group = getGroupMeta(s, meta, "g");
    assert.equal(group?.deadLettered, 1);
    assert.equal(group?.pending, 0);
  });

  it("changes a group's settings; messages in flight keep their deadlines", () => {
    const s = withGroup(2, { maxDeliveries: 3, ackWaitMs: 1000 });
    assert.deepEqual(seqs(run(s, fetch("c", 1), T + 1000)), [1]);
    assert.deepEqual(seqs(run(s, fetch("c", 1), T + 2000)), [1], "the second delivery");
    const update = (changes: Partial<GroupConfig>, ts: number) =>
      run(s, { type: "group-update", stream: "s", group: "g", changes }, ts);
    assert.deepEqual(update({ maxDeliveries: 2, ackWaitMs: 5000 }, T + 2100), {
      ok: true,
      kind: "streams.group-update",
      updated: true,
    });
    assert.deepEqual(update({ maxDeliveries: 2 }, T + 2200), {
      ok: true,
      kind: "streams.group-update",
      updated: false,
    });
    const group = getGroupMeta(s, meta(s), "g");
    assert.deepEqual(group?.config, groupConfig({ maxDeliveries: 2, ackWaitMs: 5000 }));
    // Message 1 keeps its deadline (T + 3000) and, at the new limit, is dead-lettered when due.
    assert.deepEqual(seqs(run(s, fetch("c", 1), T + 3000)), [2], "message 1 went to the dead letters");
    assert.deepEqual(payloads(s, "s.g.dlq"), ["m1"]);
    assert.equal(
      listPending(s, getGroupMeta(s, meta(s), "g") ?? assert.fail(), 10)[0]?.availableAtMs,
      T + 8000,
    );
    assert.deepEqual(update({ maxAckPending: 1 }, T + 3100), {
      ok: true,
      kind: "streams.group-update",
      updated: true,
    });
    const missing = run(
      s,
      { type: "group-update", stream: "s", group: "nope", changes: { ackWaitMs: 1 } },
      T,
    );
    assert.equal(missing.ok === false && missing.code, "ERR_NOT_FOUND");
    const noStream = run(s, { type: "group-update", stream: "x", group: "g", changes: { ackWaitMs: 1 } }, T);
    assert.equal(noStream.ok === false && noStream.code, "ERR_NOT_FOUND");
  });

  it("a sweep dead-letters a message past its last delivery's deadline when nobody fetches", () => {
    const s = withGroup(2, { maxDeliveries: 2, ackWaitMs: 1000 });
    assert.deepEqual(seqs(run(s, fetch("c", 1), T + 1000)), [1]);
    assert.deepEqual(seqs(run(s, fetch("c", 1), T + 2000)), [1], "the second and last delivery");
    assert.deepEqual(seqs(run(s, fetch("d", 1), T + 2100)), [2], "a first delivery");
    assert.equal(streamSweepDue(s, T + 2500), false, "nothing is due yet");
    assert.equal(streamSweepDue(s, T + 3050), true, "message 1 ran out of deliveries");
    assert.deepEqual(run(s, { type: "sweep", max: 100 }, T + 3200), {
      ok: true,
      kind: "streams.sweep",
      removed: 1,
    });
    assert.deepEqual(payloads(s, "s.g.dlq"), ["m1"]);
    assert.equal(streamSweepDue(s, T + 3200), false, "message 2 is due for redelivery: no sweep for it");
    const group = getGroupMeta(s, meta(s), "g");
    assert.ok(group !== undefined);
    assert.equal(group.deadLettered, 1);
    assert.equal(group.pending, 1);
    assert.deepEqual(
      listPending(s, group, 10).map((p) => [p.seq, p.deliveries]),
      [[2, 1]],
    );
    assert.deepEqual(seqs(run(s, fetch("c"), T + 3300)), [2], "and a fetch redelivers it");
  });

  it("counts dead letters a limited dead-letter stream refuses as lost, apart from those it took", () => {
    const s = fresh();
    run(s, { type: "create", name: "dead", config: config({ maxMessages: 1, discard: "new" }) }, T);
    for (let i = 1; i <= 3; i++) run(s, append("s", `m${i}`), T);
    run(
      s,
      {
        type: "group-create",
        stream: "s",
        group: "g",
        startAt: { kind: "first" },
        config: groupConfig({ maxDeliveries: 1, deadLetterStream: "dead" }),
      },
      T,
    );
    seqs(run(s, fetch("c", 3), T));
    run(s, settle("term", [3]), T);
    assert.deepEqual(seqs(run(s, fetch("c", 3), T + 1000)), [], "1 and 2 are past their delivery limit");
    const group = getGroupMeta(s, meta(s), "g");
    assert.deepEqual([group?.deadLettered, group?.deadLettersLost, group?.pending], [1, 2, 0]);
    assert.deepEqual(
      readMessages(s, meta(s, "dead"), 1, 10, 1 << 20).messages.map((m) =>
        new TextDecoder().decode(m.payload),
      ),
      ["m3"],
    );
  });

  it("term dead-letters at once with reason terminated", () => {
    const s = withGroup(2);
    seqs(run(s, fetch("c"), T + 200));
    assert.deepEqual(run(s, settle("term", [2]), T + 300), {
      ok: true,
      kind: "streams.settle",
      settled: [2],
      notPending: [],
    });
    const dlq = getStreamMeta(s, "s.g.dlq");
    assert.ok(dlq !== undefined);
    assert.deepEqual(getMessage(s, dlq, 1)?.headers[0], ["cairn-dlq-reason", "terminated"]);
    assert.deepEqual(run(s, settle("term", [2]), T + 300), {
      ok: true,
      kind: "streams.settle",
      settled: [],
      notPending: [2],
    });
  });

  it("hands out no new messages beyond maxAckPending", () => {
    const s = withGroup(5, { maxAckPending: 2 });
    assert.deepEqual(seqs(run(s, fetch("c", 10), T + 200)), [1, 2]);
    assert.deepEqual(seqs(run(s, fetch("c", 10), T + 200)), []);
    run(s, settle("ack", [1]), T + 300);
    assert.deepEqual(seqs(run(s, fetch("c", 10), T + 300)), [3]);
  });

  it("forgets in-flight messages that retention removed", () => {
    const s = new MemoryState();
    run(s, { type: "create", name: "s", config: config({ maxMessages: 2 }) }, T);
    run(s, append("s", "a"), T);
    run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: groupConfig() },
      T,
    );
    seqs(run(s, fetch("c"), T));
    run(s, append("s", "b"), T);
    run(s, append("s", "c"), T);
    assert.deepEqual(seqs(run(s, fetch("c"), T + 5000)), [2, 3]);
    const meta = getStreamMeta(s, "s");
    assert.ok(meta !== undefined);
    assert.equal(getGroupMeta(s, meta, "g")?.pending, 2);
  });

  it("reports a missing stream or group", () => {
    const s = withGroup(0);
    const r = run(s, { type: "fetch", stream: "s", group: "nope", consumer: "c", max: 1 }, T);
    assert.equal(!r.ok && r.code, "ERR_NOT_FOUND");
  });
});

describe("deleting streams and groups", () => {
  it("removes the stream at once and its data in bounded sweeps; the name starts afresh", () => {
    const s = fresh();
    for (let i = 0; i < 5; i++) run(s, append("s", "x", { msgId: `id${i}` }), T);
    run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: groupConfig() },
      T,
    );
    seqs(run(s, fetch("c"), T));
    assert.deepEqual(run(s, { type: "delete", name: "s" }, T), {
      ok: true,
      kind: "streams.delete",
      deleted: true,
    });
    assert.equal(getStreamMeta(s, "s"), undefined);
    assert.equal(streamSweepDue(s, T), true);
    let sweeps = 0;
    while (streamSweepDue(s, T)) {
      run(s, { type: "sweep", max: 4 }, T);
      sweeps++;
    }
    assert.ok(sweeps >= 4);
    for (const space of [
      "stream-message",
      "stream-dedupe",
      "stream-dedupe-ttl",
      "consumer-group",
      "consumer-pending",
    ] as const) {
      assert.equal(s.size(space), 0, space);
    }
    run(s, { type: "create", name: "s", config: config() }, T);
    assert.deepEqual(run(s, append("s", "again"), T), {
      ok: true,
      kind: "streams.append",
      seq: 1,
      id: `${T}-0`,
      duplicate: false,
    });
  });
});

describe("snapshot and restore", () => {
  it("a copy of every space continues exactly like the original", () => {
    const script: [StreamCommand, number][] = [
      [
        {
          type: "create",
          name: "s",
          config: config({ maxMessages: 4, dedupeWindowMs: 500, maxAgeMs: 5000 }),
        },
        T,
      ],
      [append("s", "a", { msgId: "1" }), T + 1],
      [append("s", "b", { msgId: "2" }), T + 2],
      [
        {
          type: "group-create",
          stream: "s",
          group: "g",
          startAt: { kind: "first" },
          config: groupConfig({ maxDeliveries: 2 }),
        },
        T + 3,
      ],
      [fetch("c1", 1), T + 4],
      [append("s", "c", { msgId: "3" }), T + 5],
      [append("s", "c2"), T + 6],
      [{ type: "message-delete", name: "s", seqs: [4] }, T + 7],
    ];
    const rest: [StreamCommand, number][] = [
      [append("s", "a", { msgId: "1" }), T + 100],
      [append("s", "a", { msgId: "1" }), T + 1000],
      [fetch("c2", 5), T + 1100],
      [settle("ack", [2]), T + 1200],
      [fetch("c1", 5), T + 2200],
      [fetch("c1", 5), T + 3300],
      [settle("term", [3]), T + 3400],
      [append("s", "d"), T + 3500],
      [append("s", "e"), T + 3600],
      [{ type: "update", name: "s", changes: { maxMessages: 2, maxAgeMs: 0 } }, T + 3700],
      [{ type: "message-delete", name: "s", seqs: [6, 1] }, T + 3800],
      [{ type: "sweep", max: 10 }, T + 9000],
      [{ type: "delete", name: "s" }, T + 9100],
      [{ type: "sweep", max: 3 }, T + 9200],
    ];
    const original = new MemoryState();
    for (const [command, ts] of script) run(original, command, ts);
    const restored = copyState(original);
    assert.deepEqual(dumpState(restored), dumpState(original));
    for (const [command, ts] of rest) {
      assert.deepEqual(run(restored, command, ts), run(original, command, ts));
    }
    assert.deepEqual(dumpState(restored), dumpState(original));
  });
});

describe("state machine limits", () => {
  const limits = { ...defaultStreamMachineLimits, streamsMax: 2, groupsPerStreamMax: 1, prunePerEntryMax: 2 };

  it("refuses streams and groups beyond their counts with ERR_LIMIT, and counts deletions", () => {
    const s = new MemoryState();
    assert.ok(applyStream(s, { type: "create", name: "a", config: config() }, T, limits).ok);
    assert.ok(applyStream(s, { type: "create", name: "b", config: config() }, T, limits).ok);
    const third = applyStream(s, { type: "create", name: "c", config: config() }, T, limits);
    assert.equal(!third.ok && third.code, "ERR_LIMIT");
    applyStream(s, { type: "delete", name: "b" }, T, limits);
    assert.ok(applyStream(s, { type: "create", name: "c", config: config() }, T, limits).ok);
    const group = (name: string) =>
      applyStream(
        s,
        { type: "group-create", stream: "a", group: name, startAt: { kind: "first" }, config: groupConfig() },
        T,
        limits,
      );
    assert.ok(group("g1").ok);
    const second = group("g2");
    assert.equal(!second.ok && second.code, "ERR_LIMIT");
  });

  it("an append prunes at most prunePerEntryMax expired messages; the rest go in later entries", () => {
    const s = new MemoryState();
    applyStream(s, { type: "create", name: "s", config: config({ maxAgeMs: 100 }) }, T, limits);
    for (let i = 0; i < 5; i++) applyStream(s, append("s", `old${i}`), T, limits);
    applyStream(s, append("s", "new"), T + 1000, limits);
    assert.equal(getStreamMeta(s, "s")?.firstSeq, 3);
    applyStream(s, append("s", "newer"), T + 1000, limits);
    assert.equal(getStreamMeta(s, "s")?.firstSeq, 5);
    assert.equal(defaultStreamMachineLimits.prunePerEntryMax, 256);
  });

  it("an update drops at most prunePerEntryMax messages over a lowered limit; sweeps drop the rest", () => {
    const s = new MemoryState();
    applyStream(s, { type: "create", name: "s", config: config() }, T, limits);
    for (let i = 0; i < 7; i++) applyStream(s, append("s", `m${i}`), T, limits);
    applyStream(s, { type: "update", name: "s", changes: { maxMessages: 2 } }, T, limits);
    assert.equal(meta(s).firstSeq, 3, "two dropped at the update");
    assert.equal(streamSweepDue(s, T), true, "over the lowered limit: a sweep is due");
    applyStream(s, { type: "sweep", max: 2 }, T, limits);
    assert.equal(meta(s).firstSeq, 5);
    applyStream(s, { type: "sweep", max: 2 }, T, limits);
    assert.equal(meta(s).firstSeq, 6);
    assert.equal(messageCount(meta(s)), 2);
    assert.equal(streamSweepDue(s, T), false);
  });

  it("an append that pushes out more than prunePerEntryMax small messages leaves the rest to sweeps", () => {
    const s = new MemoryState();
    applyStream(s, { type: "create", name: "s", config: config({ maxBytes: 6 }) }, T, limits);
    for (let i = 0; i < 6; i++) applyStream(s, append("s", "x"), T, limits);
    applyStream(s, append("s", "123456"), T, limits);
    assert.equal(meta(s).firstSeq, 3, "two dropped by the append");
    assert.equal(meta(s).bytes, 10);
    assert.equal(streamSweepDue(s, T), true);
    while (streamSweepDue(s, T)) applyStream(s, { type: "sweep", max: 2 }, T, limits);
    assert.deepEqual(payloads(s, "s"), ["123456"]);
    assert.equal(meta(s).bytes, 6);
  });

  it("a fetch hands out about fetchBytesMax of payload, and always at least one message", () => {
    const s = new MemoryState();
    const small = { ...defaultStreamMachineLimits, fetchBytesMax: 10 };
    applyStream(s, { type: "create", name: "s", config: config() }, T, small);
    for (const p of ["aaaa", "bbbb", "cccc", "dddddddddddddddd"]) applyStream(s, append("s", p), T, small);
    const group = { ...groupConfig(), maxDeliveries: 0 };
    applyStream(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: group },
      T,
      small,
    );
    assert.deepEqual(seqs(applyStream(s, fetch("c", 10), T, small)), [1, 2]);
    assert.deepEqual(seqs(applyStream(s, fetch("c", 10), T, small)), [3]);
    assert.deepEqual(seqs(applyStream(s, fetch("c", 10), T, small)), [4], "larger than the budget alone");
    // Redeliveries count too.
    assert.deepEqual(seqs(applyStream(s, fetch("c", 10), T + 1000, small)), [1, 2]);
    assert.equal(defaultStreamMachineLimits.fetchBytesMax, 4 * 1024 * 1024);
  });
});

describe("updating stream settings", () => {
  it("changes only the settings given, merging concurrent updates, and says when nothing changed", () => {
    const s = fresh(config({ maxMessages: 10 }));
    assert.deepEqual(run(s, { type: "update", name: "s", changes: { maxAgeMs: 5000 } }, T), {
      ok: true,
      kind: "streams.update",
      updated: true,
    });
    run(s, { type: "update", name: "s", changes: { discard: "new", dedupeWindowMs: 10 } }, T);
    assert.deepEqual(meta(s).config, {
      ...config({ maxMessages: 10 }),
      maxAgeMs: 5000,
      discard: "new",
      dedupeWindowMs: 10,
    });
    assert.deepEqual(run(s, { type: "update", name: "s", changes: { maxAgeMs: 5000 } }, T), {
      ok: true,
      kind: "streams.update",
      updated: false,
    });
    const missing = run(s, { type: "update", name: "nope", changes: { maxBytes: 1 } }, T);
    assert.equal(!missing.ok && missing.code, "ERR_NOT_FOUND");
  });

  it("lowering maxMessages or maxBytes drops the oldest at that entry, whatever the discard policy", () => {
    const s = fresh(config({ discard: "new" }));
    for (const p of ["aa", "bb", "cc", "dd", "ee"]) run(s, append("s", p), T);
    run(s, { type: "update", name: "s", changes: { maxMessages: 3 } }, T);
    assert.deepEqual(payloads(s, "s"), ["cc", "dd", "ee"]);
    assert.deepEqual([meta(s).firstSeq, meta(s).lastSeq, meta(s).bytes], [3, 5, 6]);
    // Full with discard "new": the next append is refused, and the stream is unchanged.
    const full = run(s, append("s", "ff"), T);
    assert.equal(!full.ok && full.code, "ERR_STREAM_FULL");
    run(s, { type: "update", name: "s", changes: { maxBytes: 4, discard: "old" } }, T);
    assert.deepEqual(payloads(s, "s"), ["dd", "ee"]);
    // Sequences are never reused: the next message is 6.
    const next = run(s, append("s", "ff"), T);
    assert.ok(next.ok && next.kind === "streams.append" && next.seq === 6);
    assert.deepEqual(payloads(s, "s"), ["ee", "ff"]);
  });

  it("lowering maxAgeMs drops messages older than it by the entry's leader time", () => {
    const s = fresh();
    run(s, append("s", "old"), T);
    run(s, append("s", "new"), T + 5000);
    run(s, { type: "update", name: "s", changes: { maxAgeMs: 2000 } }, T + 6000);
    assert.deepEqual(payloads(s, "s"), ["new"]);
    run(s, { type: "sweep", max: 100 }, T + 6999);
    assert.deepEqual(payloads(s, "s"), ["new"]);
    run(s, { type: "sweep", max: 100 }, T + 7000);
    assert.deepEqual(payloads(s, "s"), []);
  });

  it("a shortened dedupe window forgets older message ids at once, the excess in sweeps", () => {
    const s = new MemoryState();
    const limits = { ...defaultStreamMachineLimits, prunePerEntryMax: 2 };
    applyStream(s, { type: "create", name: "s", config: config({ dedupeWindowMs: 60_000 }) }, T, limits);
    for (const id of ["a", "b", "c"]) applyStream(s, append("s", "x", { msgId: id }), T, limits);
    applyStream(s, { type: "update", name: "s", changes: { dedupeWindowMs: 0 } }, T + 10, limits);
    assert.equal(s.size("stream-dedupe"), 1, "two forgotten at the update");
    assert.equal(streamSweepDue(s, T + 10), true, "one id still remembered under the old window");
    applyStream(s, { type: "sweep", max: 100 }, T + 10, limits);
    assert.equal(s.size("stream-dedupe"), 0);
    assert.equal(s.size("stream-dedupe-ttl"), 0);
    assert.equal(streamSweepDue(s, T + 10), false);
    const again = applyStream(s, append("s", "x", { msgId: "a" }), T + 20, limits);
    assert.ok(again.ok && again.kind === "streams.append" && !again.duplicate && again.seq === 4);
  });
});

describe("deleting single messages", () => {
  const del = (...list: number[]): StreamCommand => ({ type: "message-delete", name: "s", seqs: list });

  it("removes a message from the middle: counts and bytes follow, reads skip it, sequences go on", () => {
    const s = fresh();
    for (const p of ["a", "bb", "ccc", "dddd"]) run(s, append("s", p), T);
    assert.deepEqual(run(s, del(2, 2, 9, 0), T), { ok: true, kind: "streams.message-delete", deleted: [2] });
    assert.deepEqual(payloads(s, "s"), ["a", "ccc", "dddd"]);
    assert.equal(getMessage(s, meta(s), 2), undefined);
    assert.deepEqual([meta(s).firstSeq, meta(s).lastSeq, messageCount(meta(s)), meta(s).bytes], [1, 4, 3, 8]);
    assert.deepEqual(
      run(s, del(2), T),
      { ok: true, kind: "streams.message-delete", deleted: [] },
      "already gone",
    );
    const next = run(s, append("s", "e"), T);
    assert.ok(next.ok && next.kind === "streams.append" && next.seq === 5);
  });

  it("deleting the first message moves firstSeq past earlier holes; deleting all empties the stream", () => {
    const s = fresh();
    for (const p of ["a", "b", "c", "d"]) run(s, append("s", p), T);
    run(s, del(2, 3), T);
    run(s, del(1), T);
    assert.deepEqual([meta(s).firstSeq, meta(s).holes, messageCount(meta(s))], [4, undefined, 1]);
    run(s, del(4), T);
    assert.deepEqual([meta(s).firstSeq, meta(s).lastSeq, messageCount(meta(s)), meta(s).bytes], [5, 4, 0, 0]);
    const next = run(s, append("s", "e"), T);
    assert.ok(
      next.ok && next.kind === "streams.append" && next.seq === 5,
      "the last sequence is never reused",
    );
  });

  it("retention counts held messages and skips holes when it drops the oldest", () => {
    const s = fresh(config({ maxMessages: 3 }));
    for (const p of ["a", "b", "c"]) run(s, append("s", p), T);
    run(s, del(2), T);
    run(s, append("s", "d"), T);
    assert.deepEqual(payloads(s, "s"), ["a", "c", "d"], "three held: nothing dropped");
    run(s, append("s", "e"), T);
    assert.deepEqual(payloads(s, "s"), ["c", "d", "e"]);
    assert.deepEqual([meta(s).firstSeq, meta(s).holes], [3, undefined]);
  });

  it("reads from a time across deleted messages", () => {
    const s = fresh();
    for (let i = 1; i <= 6; i++) run(s, append("s", `m${i}`), T + i * 10);
    run(s, del(3, 4), T + 100);
    // 3 and 4 are gone, so reading from 3 starts at m5, the first message at or after T + 30.
    assert.equal(seqAtTime(s, meta(s), T + 30), 3);
    assert.equal(seqAtTime(s, meta(s), T + 25), 3);
    assert.equal(seqAtTime(s, meta(s), T + 20), 2);
    assert.equal(seqAtTime(s, meta(s), T + 51), 6);
    assert.equal(seqAtTime(s, meta(s), T + 61), 7);
    assert.deepEqual(
      readMessages(s, meta(s), seqAtTime(s, meta(s), T + 30), 10, 1 << 20).messages.map((m) => m.seq),
      [5, 6],
    );
  });

  it("a group starting at the last message starts at the last one held", () => {
    const s = fresh();
    for (let i = 1; i <= 6; i++) run(s, append("s", `m${i}`), T);
    run(s, del(5, 6), T);
    run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "last" }, config: groupConfig() },
      T,
    );
    assert.deepEqual(seqs(run(s, fetch("c", 10), T)), [4]);
  });

  it("groups forget in-flight records of deleted messages and never hand them out", () => {
    const s = fresh();
    for (let i = 1; i <= 5; i++) run(s, append("s", `m${i}`), T);
    run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: groupConfig() },
      T,
    );
    assert.deepEqual(seqs(run(s, fetch("c", 2), T)), [1, 2]);
    run(s, del(2, 4), T);
    const group = getGroupMeta(s, meta(s), "g");
    assert.ok(group !== undefined);
    assert.equal(group.pending, 1);
    assert.deepEqual(
      listPending(s, group, 10).map((p) => p.seq),
      [1],
    );
    assert.equal(s.size("consumer-due"), 1, "the due index follows");
    // New messages skip the deleted 4; the redelivery after the ack wait is 1 only.
    assert.deepEqual(seqs(run(s, fetch("c", 10), T)), [3, 5]);
    assert.deepEqual(seqs(run(s, fetch("c", 10), T + 1000)), [1, 3, 5]);
    assert.equal(getStreamMeta(s, "s.g.dlq"), undefined, "nothing dead-lettered");
  });
});

describe("idempotent fetches", () => {
  function keyed(s: MemoryState, command: StreamCommand, tsMs: number, key: string) {
    const envelope = decodeEnvelope(
      encodeEnvelope({ tsMs, idempotencyKey: key, command: { service: "streams", command } }),
    );
    const outcome = applyEnvelope(s, envelope);
    assert.ok(outcome.ok, JSON.stringify(outcome));
    return { result: outcome.result as StreamResult, duplicate: outcome.duplicate };
  }

  it("a retry with the same key answers the first fetch's messages and delivers nothing more", () => {
    const s = fresh();
    for (let i = 1; i <= 4; i++) run(s, append("s", `m${i}`), T);
    run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: groupConfig() },
      T,
    );
    const first = keyed(s, fetch("c", 2), T, "f1");
    assert.deepEqual(seqs(first.result), [1, 2]);
    const groupBefore = getGroupMeta(s, meta(s), "g");
    const retry = keyed(s, fetch("c", 2), T + 10, "f1");
    assert.deepEqual(retry, { result: first.result, duplicate: true });
    assert.deepEqual(getGroupMeta(s, meta(s), "g"), groupBefore, "nothing handed out again");
    // Even after the ack wait, the retry answers the same deliveries (same counts).
    const late = keyed(s, fetch("c", 2), T + 5000, "f1");
    assert.deepEqual(late, { result: first.result, duplicate: true });
  });

  it("an empty fetch leaves its key unused, so a later round of the same wait can hand out messages", () => {
    const s = fresh();
    run(
      s,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: groupConfig() },
      T,
    );
    assert.deepEqual(keyed(s, fetch("c", 2), T, "f2"), {
      result: { ok: true, kind: "streams.fetch", messages: [] },
      duplicate: false,
    });
    assert.equal(s.size("dedupe"), 0);
    run(s, append("s", "late"), T + 1);
    const round = keyed(s, fetch("c", 2), T + 2, "f2");
    assert.deepEqual(seqs(round.result), [1]);
    assert.equal(round.duplicate, false);
    assert.deepEqual(keyed(s, fetch("c", 2), T + 3, "f2"), { result: round.result, duplicate: true });
  });
});
