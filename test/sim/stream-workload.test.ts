// The stream workload end to end against a toy in-memory stream service that sometimes applies a
// request and stays silent (so clients retry): the correct toy passes, and each planted bug (a
// retried append stored twice, an acknowledged message lost, an ack that leaves the message in
// flight, a message dead-lettered twice) fails with the matching violation.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../src/util/prng.js";
import { Scheduler } from "./scheduler.js";
import type { StreamEntry } from "./stream-checker.js";
import {
  type FinalStreamState,
  groupStream,
  type StreamReply,
  type StreamTarget,
  StreamWorkload,
  type StreamWorkloadOptions,
} from "./stream-workload.js";

type Bug = "none" | "no-dedupe" | "lose-acked" | "ack-keeps-pending" | "dead-letter-twice";

const options: StreamWorkloadOptions = {
  streams: 2,
  producers: 2,
  messagesMax: 60,
  readers: 1,
  consumers: 2,
  fetchMax: 3,
  ackWaitMs: 100,
  maxDeliveries: 2,
  timeoutMs: 50,
  retriesMax: 3,
  thinkMaxMs: 10,
  settleMix: { ack: 5, nack: 1, term: 1, ignore: 1 },
};

/** A single-node stream service; one request in five applies but never answers. */
function toyStreams(scheduler: Scheduler, prng: Prng, bug: Bug): StreamTarget {
  const streams = new Map<string, StreamEntry[]>([
    ["s0", []],
    ["s1", []],
  ]);
  const seqOfId = new Map<string, number>();
  const pending = new Map<number, { deliveries: number; availableAtMs: number }>();
  const deadLetters: { dlqSeq: number; originalSeq: number }[] = [];
  const settled = new Map<string, readonly number[]>();
  let cursor = 0;
  const answer = <T>(done: (r: StreamReply<T>) => void, value: T) => {
    if (prng.chance(1, 5)) return; // applied, answer lost
    scheduler.after(1 + prng.below(5), () => done({ kind: "ok", value }));
  };
  const deadLetter = (seq: number) => {
    deadLetters.push({ dlqSeq: deadLetters.length + 1, originalSeq: seq });
    if (bug === "dead-letter-twice") deadLetters.push({ dlqSeq: deadLetters.length + 1, originalSeq: seq });
  };
  return {
    setUp: (_c, _o, done) => answer(done, undefined),
    append(_c, stream, messageId, payload, done) {
      const log = streams.get(stream) ?? [];
      const key = `${stream}/${messageId}`;
      let seq = bug === "no-dedupe" ? undefined : seqOfId.get(key);
      if (seq === undefined) {
        seq = log.length + 1;
        log.push({ seq, messageId, payload });
        seqOfId.set(key, seq);
      }
      answer(done, { seq });
    },
    read(_c, stream, from, limit, done) {
      answer(done, (streams.get(stream) ?? []).filter((e) => e.seq >= from).slice(0, limit));
    },
    fetch(_c, _consumer, max, ack, done) {
      const acked: number[] = [];
      for (const seq of ack) {
        if (!pending.has(seq)) continue;
        if (bug !== "ack-keeps-pending") pending.delete(seq);
        acked.push(seq);
      }
      const now = scheduler.nowMs;
      const out = [];
      for (const [seq, p] of pending) {
        if (out.length >= max || p.availableAtMs > now) continue;
        if (p.deliveries >= options.maxDeliveries) {
          pending.delete(seq);
          deadLetter(seq);
          continue;
        }
        p.deliveries++;
        p.availableAtMs = now + options.ackWaitMs;
        const e = streams.get(groupStream)?.[seq - 1];
        if (e !== undefined) out.push({ ...e, deliveries: p.deliveries });
      }
      const log = streams.get(groupStream) ?? [];
      while (out.length < max && cursor < log.length) {
        const e = log[cursor++];
        if (e === undefined) break;
        pending.set(e.seq, { deliveries: 1, availableAtMs: now + options.ackWaitMs });
        out.push({ ...e, deliveries: 1 });
      }
      answer(done, { messages: out, acked });
    },
    settle(_c, action, seqs, idempotencyKey, done) {
      const before = settled.get(idempotencyKey);
      if (before !== undefined) {
        answer(done, { settled: before });
        return;
      }
      const done_: number[] = [];
      for (const seq of seqs) {
        const p = pending.get(seq);
        if (p === undefined) continue;
        if (action === "ack" && bug !== "ack-keeps-pending") pending.delete(seq);
        if (action === "nack") p.availableAtMs = scheduler.nowMs;
        if (action === "term") {
          pending.delete(seq);
          deadLetter(seq);
        }
        done_.push(seq);
      }
      settled.set(idempotencyKey, done_);
      answer(done, { settled: done_ });
    },
    finalState(): FinalStreamState {
      const copies = new Map(
        [...streams].map(([name, entries]) => {
          const kept = bug === "lose-acked" && name === "s1" ? entries.slice(1) : entries;
          return [name, [{ readerId: "the toy's copy", complete: true, entries: kept }]] as const;
        }),
      );
      return {
        copies,
        group: { deliveredThroughSeq: cursor, pendingSeqs: [...pending.keys()], deadLetters },
      };
    },
  };
}

/** Runs the workload for 3 s and drains it, or cuts it off at `cutOffMs` with requests in flight. */
function run(seed: number, bug: Bug, cutOffMs?: number): readonly string[] {
  const scheduler = new Scheduler();
  const prng = new Prng(seed);
  const workload = new StreamWorkload(
    scheduler,
    prng.fork(),
    toyStreams(scheduler, prng.fork(), bug),
    options,
  );
  workload.start();
  if (cutOffMs !== undefined) {
    scheduler.runUntil(cutOffMs);
    workload.stop();
    return workload.problems();
  }
  scheduler.runUntil(3_000);
  workload.stop();
  scheduler.runAll();
  assert.ok(
    workload.counters.appended > 20 && workload.counters.acked > 5,
    JSON.stringify(workload.counters),
  );
  return workload.problems();
}

const kindsOf = (problems: readonly string[]) =>
  new Set(problems.map((p) => /^(?:stream \S+|consumer group \S+) (\S+):/.exec(p)?.[1] ?? p));

describe("StreamWorkload", () => {
  it("passes a correct stream service that loses answers", () => {
    for (let seed = 1; seed <= 5; seed++) assert.deepEqual(run(seed, "none"), [], `seed ${seed}`);
  });

  it("takes appends and acks still in flight at the end as outcomes unknown", () => {
    // Found by level-2 seed 1001003: an append attempt still open when the run ended had taken
    // effect; a reader saw it, and the checker called it a phantom.
    for (let seed = 1; seed <= 10; seed++) {
      for (const cutOffMs of [60, 97, 131, 170]) {
        assert.deepEqual(run(seed, "none", cutOffMs), [], `seed ${seed}, cut off at ${cutOffMs} ms`);
      }
    }
  });

  it("catches a retried append stored twice", () => {
    assert.ok(kindsOf(run(1, "no-dedupe")).has("duplicate"));
  });

  it("catches an acknowledged message missing from a node's copy", () => {
    assert.ok(kindsOf(run(1, "lose-acked")).has("lost"));
  });

  it("catches an acked message left in flight", () => {
    assert.ok(kindsOf(run(1, "ack-keeps-pending")).has("acked-not-settled"));
  });

  it("catches a message dead-lettered twice", () => {
    assert.ok(kindsOf(run(2, "dead-letter-twice")).has("dead-lettered-twice"));
  });
});
