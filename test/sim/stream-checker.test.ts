// The stream and consumer-group checkers: a clean history (with retries, timeouts and rejections)
// passes, and each kind of violation is planted into it and reported as exactly that kind; with
// retention, the oldest messages may go (as many as a count limit says), and never come back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AppendRecord,
  type ConsumerGroupHistory,
  checkConsumerGroup,
  checkStream,
  type ReaderView,
  type StreamEntry,
} from "./stream-checker.js";

const acked = (messageId: string, seq: number, payload = `p-${messageId}`): AppendRecord => ({
  clientId: 1,
  messageId,
  payload,
  outcome: { kind: "acked", seq },
});
const entry = (seq: number, messageId: string, payload = `p-${messageId}`): StreamEntry => ({
  seq,
  messageId,
  payload,
});

/** m1..m4 acked (m2 retried and deduplicated), m5 timed out but landed, m6 timed out and did not, m7 rejected. */
function cleanAppends(): AppendRecord[] {
  return [
    acked("m1", 1),
    { clientId: 2, messageId: "m2", payload: "p-m2", outcome: { kind: "unknown" } },
    acked("m2", 2),
    acked("m3", 3),
    acked("m4", 4),
    { clientId: 3, messageId: "m5", payload: "p-m5", outcome: { kind: "unknown" } },
    { clientId: 3, messageId: "m6", payload: "p-m6", outcome: { kind: "unknown" } },
    { clientId: 3, messageId: "m7", payload: "p-m7", outcome: { kind: "rejected" } },
  ];
}

function cleanReaders(): ReaderView[] {
  const all = [entry(1, "m1"), entry(2, "m2"), entry(3, "m3"), entry(4, "m4"), entry(5, "m5")];
  return [
    { readerId: "final", complete: true, entries: all },
    { readerId: "tail", complete: false, entries: all.slice(2) },
  ];
}

function kindsOf(appends: AppendRecord[], readers: ReaderView[]): string[] {
  return checkStream(appends, readers)
    .map((v) => v.kind)
    .sort();
}

describe("stream checker", () => {
  it("passes a clean history with retries, timeouts and rejections", () => {
    assert.deepEqual(checkStream(cleanAppends(), cleanReaders()), []);
  });

  it("reports an acknowledged message lost", () => {
    const readers = cleanReaders();
    readers[0] = {
      readerId: "final",
      complete: true,
      entries: [entry(1, "m1"), entry(2, "m2"), entry(3, "m3")],
    };
    const violations = checkStream(cleanAppends(), readers);
    assert.deepEqual(
      violations.map((v) => v.kind),
      ["lost"],
    );
    assert.equal(violations[0]?.messageId, "m4");
    assert.match(
      violations[0]?.message ?? "",
      /m4, acknowledged at seq 4, is missing from the complete read by final/,
    );
  });

  it("does not call a message lost from a partial read", () => {
    const readers: ReaderView[] = [{ readerId: "tail", complete: false, entries: [entry(1, "m1")] }];
    assert.deepEqual(checkStream(cleanAppends(), readers), []);
  });

  it("reports a message present twice", () => {
    const readers = cleanReaders();
    readers[0] = {
      readerId: "final",
      complete: true,
      entries: [...(readers[0]?.entries ?? []), entry(6, "m2")],
    };
    assert.deepEqual(kindsOf(cleanAppends(), readers), ["duplicate"]);
    // Or acknowledged twice at different sequences: the retry was not deduplicated.
    assert.deepEqual(kindsOf([...cleanAppends(), acked("m2", 6)], cleanReaders()), ["duplicate"]);
  });

  it("reports a gap, and a complete read that does not start at 1", () => {
    const readers: ReaderView[] = [
      { readerId: "tail", complete: false, entries: [entry(1, "m1"), entry(3, "m3")] },
    ];
    assert.deepEqual(kindsOf(cleanAppends(), readers), ["gap"]);
    const late: ReaderView[] = [
      {
        readerId: "final",
        complete: true,
        entries: [entry(2, "m2"), entry(3, "m3"), entry(4, "m4"), entry(5, "m5")],
      },
    ];
    assert.deepEqual(kindsOf(cleanAppends(), late), ["gap", "lost"]);
  });

  it("reports a sequence number reused, by acks or within one reader", () => {
    // m8 acknowledged at seq 3, which m3 holds: reused, not where acknowledged, and missing.
    assert.deepEqual(kindsOf([...cleanAppends(), acked("m8", 3)], cleanReaders()), [
      "lost",
      "reused-sequence",
      "wrong-sequence",
    ]);
    const readers: ReaderView[] = [
      { readerId: "tail", complete: false, entries: [entry(3, "m3"), entry(3, "m4")] },
    ];
    assert.ok(kindsOf(cleanAppends(), readers).includes("reused-sequence"));
  });

  it("reports a reader seeing sequences go backwards", () => {
    const readers: ReaderView[] = [
      { readerId: "tail", complete: false, entries: [entry(1, "m1"), entry(3, "m3"), entry(2, "m2")] },
    ];
    assert.deepEqual(kindsOf(cleanAppends(), readers), ["gap", "out-of-order"]);
  });

  it("reports two readers seeing different messages or payloads at one sequence", () => {
    const readers = cleanReaders();
    readers[1] = { readerId: "tail", complete: false, entries: [entry(3, "m3"), entry(4, "m4", "tampered")] };
    const violations = checkStream(cleanAppends(), readers);
    // The tampered payload was never sent either.
    assert.deepEqual(
      violations.map((v) => v.kind),
      ["divergent", "phantom"],
    );
    assert.match(violations[0]?.message ?? "", /at seq 4 final saw m4 "p-m4" but tail saw m4 "tampered"/);
  });

  it("reports a message present that was never appended, only rejected, or with a payload nobody sent", () => {
    const withExtra = (e: StreamEntry): ReaderView[] => {
      const readers = cleanReaders();
      readers[0] = { readerId: "final", complete: true, entries: [...(readers[0]?.entries ?? []), e] };
      return readers;
    };
    assert.deepEqual(kindsOf(cleanAppends(), withExtra(entry(6, "ghost"))), ["phantom"]);
    assert.deepEqual(kindsOf(cleanAppends(), withExtra(entry(6, "m7"))), ["phantom"]);
    assert.deepEqual(kindsOf(cleanAppends(), withExtra(entry(6, "m6", "not-what-was-sent"))), ["phantom"]);
  });

  it("reports an acknowledged message found at another sequence", () => {
    const swapped: ReaderView[] = [
      {
        readerId: "final",
        complete: true,
        entries: [entry(1, "m1"), entry(2, "m2"), entry(3, "m4"), entry(4, "m3"), entry(5, "m5")],
      },
    ];
    assert.deepEqual(kindsOf(cleanAppends(), swapped), ["wrong-sequence", "wrong-sequence"]);
  });

  it("reports a read that starts past where it asked in a stream that never trims", () => {
    const read = { from: 2, callMs: 10, returnMs: 20 };
    const ok: ReaderView = { readerId: "r", complete: false, entries: [entry(2, "m2")], read };
    assert.deepEqual(kindsOf(cleanAppends(), [...cleanReaders(), ok]), []);
    const gone: ReaderView = { ...ok, entries: [entry(3, "m3")] };
    assert.deepEqual(kindsOf(cleanAppends(), [...cleanReaders(), gone]), ["over-trimmed"]);
  });
});

describe("stream checker with retention", () => {
  const all = [entry(1, "m1"), entry(2, "m2"), entry(3, "m3"), entry(4, "m4"), entry(5, "m5")];
  const kinds = (readers: ReaderView[], retention: { maxMessages: number } | { maxAgeMs: number }) =>
    checkStream(cleanAppends(), readers, retention)
      .map((v) => v.kind)
      .sort();
  const final = (entries: StreamEntry[]): ReaderView => ({ readerId: "final", complete: true, entries });
  const read = (from: number, entries: StreamEntry[], callMs: number, returnMs: number): ReaderView => ({
    readerId: `read from ${from} at ${callMs}ms`,
    complete: false,
    entries,
    read: { from, callMs, returnMs },
  });

  it("lets the oldest messages go: as many as a count limit says, any under an age limit", () => {
    assert.deepEqual(kinds([final(all.slice(2))], { maxMessages: 3 }), []);
    assert.deepEqual(kinds([final(all.slice(3))], { maxAgeMs: 1000 }), []);
    assert.deepEqual(kinds([final([])], { maxAgeMs: 1000 }), []);
  });

  it("reports more messages gone than a count limit takes, and acknowledged ones missing above the start", () => {
    assert.deepEqual(kinds([final(all.slice(3))], { maxMessages: 3 }), ["lost", "over-trimmed"]);
    assert.deepEqual(kinds([final([all[2], all[4]].filter((e) => e !== undefined))], { maxAgeMs: 1000 }), [
      "gap",
      "lost",
    ]);
  });

  it("reports a message read again after a read answered earlier found it trimmed", () => {
    const trimmed = read(1, all.slice(2, 4), 100, 120);
    // Called before the trim was seen: the read may come from before it.
    const before = read(2, all.slice(1, 3), 110, 130);
    assert.deepEqual(kinds([final(all.slice(2)), trimmed, before], { maxMessages: 3 }), []);
    const after = read(2, all.slice(1, 3), 140, 150);
    assert.deepEqual(kinds([final(all.slice(2)), trimmed, after], { maxMessages: 3 }), ["resurrected"]);
  });
});

/** Seqs 1..6 handed out: 1, 2 acked; 3 in flight; 4 dead-lettered after 3 deliveries; 5 acked; 6 in flight; 7 backlog. */
function cleanGroup(): ConsumerGroupHistory {
  return {
    streamSeqs: [1, 2, 3, 4, 5, 6, 7],
    deliveries: [
      { consumer: "c1", seq: 1, deliveryCount: 1 },
      { consumer: "c2", seq: 2, deliveryCount: 1 },
      { consumer: "c1", seq: 3, deliveryCount: 1 },
      { consumer: "c1", seq: 4, deliveryCount: 1 },
      { consumer: "c2", seq: 4, deliveryCount: 2 },
      { consumer: "c1", seq: 4, deliveryCount: 3 },
      { consumer: "c2", seq: 5, deliveryCount: 1 },
      { consumer: "c2", seq: 6, deliveryCount: 1 },
    ],
    acks: [
      { consumer: "c1", seq: 1 },
      { consumer: "c2", seq: 2 },
      { consumer: "c2", seq: 5 },
    ],
    final: { deliveredThroughSeq: 6, pendingSeqs: [3, 6] },
    deadLetters: [{ dlqSeq: 1, originalSeq: 4 }],
    maxDeliveries: 3,
  };
}

const groupKinds = (h: ConsumerGroupHistory) =>
  checkConsumerGroup(h)
    .map((v) => v.kind)
    .sort();

describe("consumer group checker", () => {
  it("passes a clean group: acked, in flight, dead-lettered once, and backlog", () => {
    assert.deepEqual(checkConsumerGroup(cleanGroup()), []);
  });

  it("reports a handed-out message that is neither acked, in flight nor dead-lettered", () => {
    const h = cleanGroup();
    const violations = checkConsumerGroup({ ...h, final: { ...h.final, pendingSeqs: [3] } });
    assert.deepEqual(
      violations.map((v) => [v.kind, v.seq]),
      [["lost", 6]],
    );
  });

  it("does not call a message lost when an ack of it went unanswered, nor count that ack as settling it", () => {
    const h = cleanGroup();
    const gone = { ...h, final: { ...h.final, pendingSeqs: [3] } };
    assert.deepEqual(checkConsumerGroup({ ...gone, unconfirmedAcks: [{ consumer: "c1", seq: 6 }] }), []);
    // An unanswered ack of a message still in flight may simply not have happened.
    assert.deepEqual(checkConsumerGroup({ ...h, unconfirmedAcks: [{ consumer: "c1", seq: 3 }] }), []);
  });

  it("reports a message dead-lettered twice", () => {
    const h = cleanGroup();
    assert.deepEqual(groupKinds({ ...h, deadLetters: [...h.deadLetters, { dlqSeq: 2, originalSeq: 4 }] }), [
      "dead-lettered-twice",
    ]);
  });

  it("reports an acked message dead-lettered or still in flight", () => {
    const h = cleanGroup();
    assert.deepEqual(groupKinds({ ...h, deadLetters: [...h.deadLetters, { dlqSeq: 2, originalSeq: 5 }] }), [
      "acked-not-settled",
    ]);
    assert.deepEqual(groupKinds({ ...h, acks: [...h.acks, { consumer: "c1", seq: 3 }] }), [
      "acked-not-settled",
    ]);
  });

  it("reports a dead-lettered message still in flight", () => {
    const h = cleanGroup();
    assert.deepEqual(groupKinds({ ...h, final: { ...h.final, pendingSeqs: [3, 4, 6] } }), [
      "dead-lettered-still-pending",
    ]);
  });

  it("reports deliveries past the limit", () => {
    const h = cleanGroup();
    assert.deepEqual(
      groupKinds({ ...h, deliveries: [...h.deliveries, { consumer: "c2", seq: 3, deliveryCount: 4 }] }),
      ["over-delivered"],
    );
  });

  it("reports deliveries and dead letters of messages not in the stream or past the cursor", () => {
    const h = cleanGroup();
    assert.deepEqual(groupKinds({ ...h, deadLetters: [...h.deadLetters, { dlqSeq: 2, originalSeq: 99 }] }), [
      "phantom",
    ]);
    assert.deepEqual(
      groupKinds({ ...h, deliveries: [...h.deliveries, { consumer: "c1", seq: 7, deliveryCount: 1 }] }),
      ["phantom"],
    );
  });
});
