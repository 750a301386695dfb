// A model-based property test of one stream with one consumer group: random sequences of appends
// (with message ids and expected sequences), fetches, acks, nacks, extends, terms, single-message
// deletes, changes of the stream's message limit, sweeps and clock moves run against the real state
// machine and a plain reference model, which must agree on every result; and at every step each
// message the group has seen is acked, in flight, dead-lettered once, or gone (by retention or
// deletion). Half the runs also snapshot and restore the state in the middle.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MemoryState } from "../../../../src/service/state.js";
import {
  getGroupMeta,
  getStreamMeta,
  listPending,
  messageCount,
  readMessages,
  type StreamCommand,
  type StreamResult,
} from "../../../../src/service/streams/index.js";
import { utf8 } from "../../../../src/util/bytes.js";
import { config, copyState, run } from "./helpers.js";

const T = 1_700_000_000_000;
const MAX_MESSAGES = 6;
const WINDOW_MS = 3000;
const ACK_WAIT_MS = 1000;
const MAX_DELIVERIES = 3;
const MAX_ACK_PENDING = 4;

type Op =
  | { kind: "append"; msgId?: string | undefined; expect?: number | undefined }
  | { kind: "fetch"; consumer: string; max: number }
  | { kind: "settle"; action: "ack" | "nack" | "extend" | "term"; seqs: number[]; delayMs: number }
  /** Sequences counted back from the last one (0: the last), so most name messages still held. */
  | { kind: "delete"; back: number[] }
  | { kind: "limit"; maxMessages: number }
  | { kind: "sweep" }
  | { kind: "snapshot" };

interface Pending {
  consumer: string;
  availableAtMs: number;
  deliveries: number;
}

/** The reference: arrays and maps, no encoding, no bounds on work. */
class Model {
  clockMs = T;
  lastSeq = 0;
  maxMessages = MAX_MESSAGES;
  payloads = new Map<number, string>();
  dedupe = new Map<string, { seq: number; atMs: number }>();
  nextSeq = 1;
  pending = new Map<number, Pending>();
  acked = new Set<number>();
  dead: { seq: number; reason: string; deliveries: number }[] = [];

  tick(tsMs: number): void {
    this.clockMs = Math.max(this.clockMs, tsMs);
  }

  /** The oldest sequence held, or lastSeq + 1 when none is. */
  get firstSeq(): number {
    return this.payloads.size === 0 ? this.lastSeq + 1 : Math.min(...this.payloads.keys());
  }

  #dropOverLimit(): void {
    while (this.payloads.size > this.maxMessages) this.payloads.delete(this.firstSeq);
  }

  limit(maxMessages: number): { updated: boolean } {
    const updated = maxMessages !== this.maxMessages;
    this.maxMessages = maxMessages;
    this.#dropOverLimit();
    return { updated };
  }

  delete(seqs: number[]): { deleted: number[] } {
    const deleted: number[] = [];
    for (const seq of seqs) {
      if (!this.payloads.delete(seq)) continue;
      deleted.push(seq);
      this.pending.delete(seq);
    }
    return { deleted };
  }

  append(payload: string, msgId: string | undefined, expect: number | undefined): unknown {
    if (msgId !== undefined) {
      const seen = this.dedupe.get(msgId);
      if (seen !== undefined && seen.atMs > this.clockMs - WINDOW_MS) return { dup: seen.seq };
    }
    if (expect !== undefined && expect !== this.lastSeq) return { conflict: this.lastSeq };
    this.lastSeq++;
    this.payloads.set(this.lastSeq, payload);
    this.#dropOverLimit();
    if (msgId !== undefined) this.dedupe.set(msgId, { seq: this.lastSeq, atMs: this.clockMs });
    return { seq: this.lastSeq };
  }

  fetch(consumer: string, max: number): [number, number][] {
    const out: [number, number][] = [];
    // Due messages, earliest deadline first (ties by sequence).
    const due = [...this.pending.entries()]
      .filter(([, p]) => p.availableAtMs <= this.clockMs)
      .sort(([sa, a], [sb, b]) => a.availableAtMs - b.availableAtMs || sa - sb);
    for (const [seq, p] of due) {
      if (out.length >= max) break;
      if (!this.payloads.has(seq)) {
        this.pending.delete(seq);
        continue;
      }
      if (p.deliveries >= MAX_DELIVERIES) {
        this.pending.delete(seq);
        this.dead.push({ seq, reason: "max-deliveries", deliveries: p.deliveries });
        continue;
      }
      this.pending.set(seq, {
        consumer,
        availableAtMs: this.clockMs + ACK_WAIT_MS,
        deliveries: p.deliveries + 1,
      });
      out.push([seq, p.deliveries + 1]);
    }
    let next = Math.max(this.nextSeq, this.firstSeq);
    while (out.length < max && next <= this.lastSeq && this.pending.size < MAX_ACK_PENDING) {
      if (this.payloads.has(next)) {
        this.pending.set(next, { consumer, availableAtMs: this.clockMs + ACK_WAIT_MS, deliveries: 1 });
        out.push([next, 1]);
      }
      next++;
    }
    this.nextSeq = next;
    return out;
  }

  /** A sweep dead-letters messages in flight past their last delivery's deadline, earliest first. */
  sweep(): void {
    const exhausted = [...this.pending.entries()]
      .filter(([, p]) => p.availableAtMs <= this.clockMs && p.deliveries >= MAX_DELIVERIES)
      .sort(([sa, a], [sb, b]) => a.availableAtMs - b.availableAtMs || sa - sb);
    for (const [seq, p] of exhausted) {
      this.pending.delete(seq);
      if (this.payloads.has(seq)) this.dead.push({ seq, reason: "max-deliveries", deliveries: p.deliveries });
    }
  }

  settle(action: string, seqs: number[], delayMs: number): { settled: number[]; notPending: number[] } {
    const settled: number[] = [];
    const notPending: number[] = [];
    for (const seq of seqs) {
      const p = this.pending.get(seq);
      if (p === undefined || (action === "extend" && p.consumer === "")) {
        notPending.push(seq);
        continue;
      }
      if (action === "ack") {
        this.pending.delete(seq);
        this.acked.add(seq);
      } else if (action === "nack") {
        this.pending.set(seq, { ...p, consumer: "", availableAtMs: this.clockMs + delayMs });
      } else if (action === "extend") {
        this.pending.set(seq, { ...p, availableAtMs: this.clockMs + ACK_WAIT_MS });
      } else {
        this.pending.delete(seq);
        if (this.payloads.has(seq)) this.dead.push({ seq, reason: "terminated", deliveries: p.deliveries });
      }
      settled.push(seq);
    }
    return { settled, notPending };
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        kind: fc.constant("append" as const),
        msgId: fc.option(fc.constantFrom("a", "b", "c", "d"), { nil: undefined }),
        expect: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
      },
      { requiredKeys: ["kind"] },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("fetch" as const),
      consumer: fc.constantFrom("c1", "c2"),
      max: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("settle" as const),
      action: fc.constantFrom(
        "ack" as const,
        "ack" as const,
        "nack" as const,
        "extend" as const,
        "term" as const,
      ),
      seqs: fc.uniqueArray(fc.integer({ min: 1, max: 14 }), { minLength: 1, maxLength: 3 }),
      delayMs: fc.constantFrom(0, 0, 500, 2000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      back: fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("limit" as const),
      maxMessages: fc.integer({ min: 1, max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "sweep" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "snapshot" as const }) },
);

function summarize(result: StreamResult): unknown {
  assert.ok(result.ok, JSON.stringify(result));
  switch (result.kind) {
    case "streams.append":
      return result.duplicate ? { dup: result.seq } : { seq: result.seq };
    case "streams.fetch":
      return result.messages.map((m) => [m.seq, m.deliveries]);
    case "streams.settle":
      return { settled: result.settled, notPending: result.notPending };
    case "streams.message-delete":
      return { deleted: result.deleted };
    case "streams.update":
      return { updated: result.updated };
    default:
      return result;
  }
}

function checkAgainstModel(state: MemoryState, model: Model): void {
  const meta = getStreamMeta(state, "s");
  assert.ok(meta !== undefined);
  assert.equal(meta.firstSeq, model.firstSeq);
  assert.equal(meta.lastSeq, model.lastSeq);
  assert.equal(messageCount(meta), model.payloads.size);
  const held = readMessages(state, meta, 1, 100, 1 << 20).messages;
  assert.deepEqual(
    held.map((m) => [m.seq, new TextDecoder().decode(m.payload)]),
    [...model.payloads.entries()],
  );
  const group = getGroupMeta(state, meta, "g");
  assert.ok(group !== undefined);
  const pending = listPending(state, group, 100);
  assert.deepEqual(
    pending.map((p) => [p.seq, p.consumer, p.availableAtMs, p.deliveries]),
    [...model.pending.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([seq, p]) => [seq, p.consumer, p.availableAtMs, p.deliveries]),
  );
  assert.equal(group.pending, model.pending.size);
  // The due index names exactly the messages in flight.
  assert.equal(state.size("consumer-due"), pending.length);
  // The dead-letter stream holds each dead letter once, in order, with its reason and count.
  const dlq = getStreamMeta(state, "s.g.dlq");
  const dead = dlq === undefined ? [] : readMessages(state, dlq, 1, 1000, 1 << 20).messages;
  assert.deepEqual(
    dead.map((m) => {
      const h = new Map(m.headers);
      return {
        seq: Number(h.get("cairn-dlq-seq")),
        reason: h.get("cairn-dlq-reason"),
        deliveries: Number(h.get("cairn-dlq-deliveries")),
      };
    }),
    model.dead,
  );
  // Every message the group has seen is acked, in flight, dead-lettered, or gone (by retention
  // or deletion).
  const deadSeqs = new Set(model.dead.map((d) => d.seq));
  for (let seq = 1; seq < Math.max(group.nextSeq, meta.firstSeq); seq++) {
    const places = [model.acked.has(seq), model.pending.has(seq), deadSeqs.has(seq)].filter(Boolean).length;
    assert.ok(places <= 1, `message ${seq} is in ${places} places`);
    assert.ok(places === 1 || !model.payloads.has(seq), `message ${seq} was lost`);
  }
}

describe("streams model: the state machine agrees with a reference model", () => {
  it("on random histories of appends, fetches, settles, sweeps, clock moves and snapshots", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            opArb,
            fc.integer({ min: -3, max: 15 }).map((x) => x * 100),
          ),
          { minLength: 1, maxLength: 60, size: "medium" },
        ),
        (history) => {
          let state = new MemoryState();
          const model = new Model();
          let ts = T;
          run(
            state,
            {
              type: "create",
              name: "s",
              config: config({ maxMessages: MAX_MESSAGES, dedupeWindowMs: WINDOW_MS }),
            },
            ts,
          );
          run(
            state,
            {
              type: "group-create",
              stream: "s",
              group: "g",
              startAt: { kind: "first" },
              config: {
                ackWaitMs: ACK_WAIT_MS,
                maxDeliveries: MAX_DELIVERIES,
                deadLetterStream: "s.g.dlq",
                maxAckPending: MAX_ACK_PENDING,
              },
            },
            ts,
          );
          let n = 0;
          for (const [op, step] of history) {
            ts = Math.max(T, ts + step);
            if (op.kind === "snapshot") {
              state = copyState(state);
              continue;
            }
            model.tick(ts);
            let command: StreamCommand;
            let expected: unknown;
            if (op.kind === "append") {
              const payload = `p${n++}`;
              command = {
                type: "append",
                name: "s",
                payload: utf8(payload),
                headers: [],
                ...(op.msgId !== undefined ? { msgId: op.msgId } : {}),
                ...(op.expect !== undefined ? { expectedLastSeq: op.expect } : {}),
              };
              expected = model.append(payload, op.msgId, op.expect);
            } else if (op.kind === "fetch") {
              command = { type: "fetch", stream: "s", group: "g", consumer: op.consumer, max: op.max };
              expected = model.fetch(op.consumer, op.max);
            } else if (op.kind === "settle") {
              command = {
                type: "settle",
                stream: "s",
                group: "g",
                action: op.action,
                seqs: op.seqs,
                delayMs: op.delayMs,
              };
              expected = model.settle(op.action, op.seqs, op.delayMs);
            } else if (op.kind === "delete") {
              const seqs = op.back.map((back) => Math.max(1, model.lastSeq - back));
              command = { type: "message-delete", name: "s", seqs };
              expected = model.delete(seqs);
            } else if (op.kind === "limit") {
              command = { type: "update", name: "s", changes: { maxMessages: op.maxMessages } };
              expected = model.limit(op.maxMessages);
            } else {
              command = { type: "sweep", max: 100 };
              model.sweep();
              expected = undefined;
            }
            const result = run(state, command, ts);
            if (
              expected !== undefined &&
              typeof expected === "object" &&
              expected !== null &&
              "conflict" in expected
            ) {
              assert.ok(
                !result.ok &&
                  result.code === "ERR_CONFLICT" &&
                  result.details.currentLastSeq === expected.conflict,
              );
            } else if (expected !== undefined) {
              assert.deepEqual(summarize(result), expected);
            }
            checkAgainstModel(state, model);
          }
        },
      ),
      { seed: 7, numRuns: 150 },
    );
  });
});
