// The streams and consumer-groups state machine, command by command: dense sequences and ids,
// deduplication, conditional appends, retention by count, bytes and age (by leader time), every
// consumer transition, dead letters, deletion in bounded sweeps, and snapshot round trips. Commands
// go through the real envelope codec, so encoding is covered too.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryState } from "../../../../src/service/state.js";
import {
  applyStream,
  type DeliveredMessage,
  defaultStreamMachineLimits,
  type GroupConfig,
  getGroupMeta,
  getMessage,
  getStreamMeta,
  listPending,
  readMessages,
  type StreamCommand,
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
    op: "create",
    created: true,
  });
  return s;
}

function seqs(result: StreamResult): number[] {
  assert.ok(result.ok && result.op === "fetch", JSON.stringify(result));
  return result.messages.map((m: DeliveredMessage) => m.seq);
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
      op: "create",
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
      op: "append",
      seq: 1,
      id: `${T}-0`,
      duplicate: false,
    });
    assert.deepEqual(run(s, append("s", "b"), T), {
      ok: true,
      op: "append",
      seq: 2,
      id: `${T}-1`,
      duplicate: false,
    });
    // A new leader whose clock is behind still produces increasing ids.
    assert.deepEqual(run(s, append("s", "c"), T - 500), {
      ok: true,
      op: "append",
      seq: 3,
      id: `${T}-2`,
      duplicate: false,
    });
    assert.deepEqual(run(s, append("s", "d"), T + 7), {
      ok: true,
      op: "append",
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
      op: "append",
      seq: 1,
      id: `${T}-0`,
      duplicate: true,
    });
    assert.deepEqual(payloads(s, "s"), ["a", "b"]);
    // Past the window the id is new again.
    const later = run(s, append("s", "c", { msgId: "m1" }), T + 1000);
    assert.ok(later.ok && later.op === "append" && later.seq === 3 && !later.duplicate);
  });

  it("forgets expired message ids in bounded sweeps", () => {
    const s = fresh(config({ dedupeWindowMs: 1000 }));
    for (let i = 0; i < 5; i++) run(s, append("s", "x", { msgId: `m${i}` }), T);
    assert.equal(streamSweepDue(s, T + 10), false);
    assert.equal(streamSweepDue(s, T + 1000), true);
    assert.deepEqual(run(s, { type: "sweep", max: 3 }, T + 1000), { ok: true, op: "sweep", removed: 3 });
    assert.deepEqual(run(s, { type: "sweep", max: 3 }, T + 1000), { ok: true, op: "sweep", removed: 2 });
    assert.equal(s.size("stream-dedupe"), 0);
    assert.equal(s.size("stream-dedupe-ttl"), 0);
    assert.equal(streamSweepDue(s, T + 1000), false);
  });

  it("appends only at the expected last sequence", () => {
    const s = fresh();
    assert.ok(run(s, append("s", "a", { expectedLastSeq: 0 }), T).ok);
    const stale = run(s, append("s", "b", { expectedLastSeq: 0 }), T);
    assert.deepEqual(stale, {
      ok: false,
      code: "ERR_CONFLICT",
      message: "stream s is at sequence 1, not 0",
      currentLastSeq: 1,
    });
    assert.ok(run(s, append("s", "b", { expectedLastSeq: 1 }), T).ok);
    assert.deepEqual(payloads(s, "s"), ["a", "b"]);
  });

  it("a retried conditional append with its message id gets the original answer, not a conflict", () => {
    const s = fresh();
    run(s, append("s", "a", { msgId: "x", expectedLastSeq: 0 }), T);
    const retry = run(s, append("s", "a", { msgId: "x", expectedLastSeq: 0 }), T + 1);
    assert.ok(retry.ok && retry.op === "append" && retry.duplicate && retry.seq === 1);
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
    assert.deepEqual(created, { ok: true, op: "group-create", created: true });
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
      { seq: 1, consumer: "c1", availableAtMs: T + 1200, deliveries: 1 },
      { seq: 2, consumer: "c1", availableAtMs: T + 1200, deliveries: 1 },
      { seq: 3, consumer: "c2", availableAtMs: T + 1200, deliveries: 1 },
    ]);
    assert.equal(group.pending, 3);
  });

  it("redelivers an unacknowledged message once its ack deadline has passed, by leader time", () => {
    const s = withGroup(1);
    seqs(run(s, fetch("c1"), T + 200));
    assert.deepEqual(seqs(run(s, fetch("c2"), T + 1199)), []);
    const again = run(s, fetch("c2"), T + 1200);
    assert.ok(again.ok && again.op === "fetch");
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
      op: "settle",
      settled: [1],
      notPending: [],
    });
    assert.deepEqual(run(s, settle("ack", [1, 9]), T + 300), {
      ok: true,
      op: "settle",
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

  it("term dead-letters at once with reason terminated", () => {
    const s = withGroup(2);
    seqs(run(s, fetch("c"), T + 200));
    assert.deepEqual(run(s, settle("term", [2]), T + 300), {
      ok: true,
      op: "settle",
      settled: [2],
      notPending: [],
    });
    const dlq = getStreamMeta(s, "s.g.dlq");
    assert.ok(dlq !== undefined);
    assert.deepEqual(getMessage(s, dlq, 1)?.headers[0], ["cairn-dlq-reason", "terminated"]);
    assert.deepEqual(run(s, settle("term", [2]), T + 300), {
      ok: true,
      op: "settle",
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
    assert.deepEqual(run(s, { type: "delete", name: "s" }, T), { ok: true, op: "delete", deleted: true });
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
      op: "append",
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
  const limits = { streamsMax: 2, groupsPerStreamMax: 1, prunePerAppendMax: 2 };

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

  it("an append prunes at most prunePerAppendMax expired messages; the rest go in later entries", () => {
    const s = new MemoryState();
    applyStream(s, { type: "create", name: "s", config: config({ maxAgeMs: 100 }) }, T, limits);
    for (let i = 0; i < 5; i++) applyStream(s, append("s", `old${i}`), T, limits);
    applyStream(s, append("s", "new"), T + 1000, limits);
    assert.equal(getStreamMeta(s, "s")?.firstSeq, 3);
    applyStream(s, append("s", "newer"), T + 1000, limits);
    assert.equal(getStreamMeta(s, "s")?.firstSeq, 5);
    assert.equal(defaultStreamMachineLimits.prunePerAppendMax, 256);
  });
});
