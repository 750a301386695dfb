// Checkers for the message half of Cairn: a stream's total order (no acknowledged message lost, no
// duplicates, dense sequences, one payload per sequence for every reader, nothing that was never
// appended), its retention (only the oldest messages go, as many as the limit says, and a message
// once trimmed is never read again) and a consumer group's bookkeeping (every message acked, in
// flight or dead-lettered, dead-lettered exactly once). Both read plain records the harness
// collects; both list every violation rather than stopping at the first.
import { assertNever } from "../../src/util/assert.js";

/**
 * How an append ended for its producer. `acked`: the cluster assigned `seq`. `unknown`: the producer
 * timed out; the message may or may not be in the stream. `rejected`: a definite failure (validation,
 * expected-last-sequence mismatch); the message must not be in the stream unless another attempt with
 * the same message id succeeded.
 */
export type AppendOutcome =
  | { readonly kind: "acked"; readonly seq: number }
  | { readonly kind: "unknown" }
  | { readonly kind: "rejected" };

/** One append attempt. Retries of one logical message share its `messageId` (the idempotency key). */
export interface AppendRecord {
  readonly clientId: number;
  readonly messageId: string;
  readonly payload: string;
  readonly outcome: AppendOutcome;
}

/** One message as a reader saw it. */
export interface StreamEntry {
  readonly seq: number;
  readonly messageId: string;
  readonly payload: string;
}

/**
 * What one reader saw, in the order it saw it. A `complete` view is a read of the whole stream from
 * its first held message to its end after the run settled: the only kind that can prove a message
 * lost. A client's read says where it asked to start and when it was called and answered (a
 * linearizable read: it saw the stream as it was at one moment in between).
 */
export interface ReaderView {
  readonly readerId: string;
  readonly complete: boolean;
  readonly entries: readonly StreamEntry[];
  readonly read?: { readonly from: number; readonly callMs: number; readonly returnMs: number };
}

/**
 * A stream's retention limits, dropping its oldest messages (discard "old"): at most `maxMessages`
 * held, or none older than `maxAgeMs` by the applied clock.
 */
export type StreamRetention = { readonly maxMessages: number } | { readonly maxAgeMs: number };

/** The kinds of stream violation. */
export type StreamViolationKind =
  /** An acknowledged message is missing from a complete read. */
  | "lost"
  /** One message id at two sequences (a retry appended twice). */
  | "duplicate"
  /** A reader skipped sequence numbers (or a complete read did not start at 1). */
  | "gap"
  /** Two different messages given one sequence number (by acks or by what readers saw). */
  | "reused-sequence"
  /** A reader saw sequence numbers go backwards or repeat. */
  | "out-of-order"
  /** Two readers saw different messages at one sequence. */
  | "divergent"
  /** A message that was never appended (or only ever rejected), or with a payload nobody appended. */
  | "phantom"
  /** An acknowledged message found at a sequence other than the one it was acknowledged with. */
  | "wrong-sequence"
  /** Messages gone that retention keeps (or, without retention, any message gone). */
  | "over-trimmed"
  /** A message read again after an earlier read (answered before this one was called) found it trimmed. */
  | "resurrected";

/** One stream violation, with the sequence and message it concerns. */
export interface StreamViolation {
  readonly kind: StreamViolationKind;
  readonly message: string;
  readonly seq?: number;
  readonly messageId?: string;
}

interface Sighting {
  readonly entry: StreamEntry;
  readonly readerId: string;
}

/**
 * Checks one stream's appends against what its readers saw; with `retention`, the oldest messages
 * may be gone (as many as the limit says, for a count limit).
 */
export function checkStream(
  appends: readonly AppendRecord[],
  readers: readonly ReaderView[],
  retention?: StreamRetention,
): StreamViolation[] {
  const out: StreamViolation[] = [];
  const report = (v: StreamViolation) => out.push(v);

  // What producers were told.
  const appendedPayloads = new Map<string, Set<string>>();
  const everAccepted = new Set<string>(); // acked or unknown: may be in the stream
  const ackedSeqOf = new Map<string, number>();
  const ackedAt = new Map<number, string>();
  for (const a of appends) {
    const payloads = appendedPayloads.get(a.messageId) ?? new Set<string>();
    payloads.add(a.payload);
    appendedPayloads.set(a.messageId, payloads);
    switch (a.outcome.kind) {
      case "acked": {
        const { seq } = a.outcome;
        everAccepted.add(a.messageId);
        const earlier = ackedSeqOf.get(a.messageId);
        if (earlier !== undefined && earlier !== seq) {
          report({
            kind: "duplicate",
            messageId: a.messageId,
            seq,
            message: `message ${a.messageId} was acknowledged at seq ${earlier} and, on a retry, at seq ${seq}`,
          });
        }
        if (earlier === undefined) ackedSeqOf.set(a.messageId, seq);
        const holder = ackedAt.get(seq);
        if (holder !== undefined && holder !== a.messageId) {
          report({
            kind: "reused-sequence",
            seq,
            messageId: a.messageId,
            message: `seq ${seq} was acknowledged to both ${holder} and ${a.messageId}`,
          });
        }
        if (holder === undefined) ackedAt.set(seq, a.messageId);
        break;
      }
      case "unknown":
        everAccepted.add(a.messageId);
        break;
      case "rejected":
        break;
      default:
        assertNever(a.outcome, "append outcome");
    }
  }

  // Each reader on its own: dense, increasing sequences, starting where retention allows.
  for (const view of readers) {
    let previous: StreamEntry | undefined;
    const first = view.entries[0]?.seq;
    const keptFrom = view.complete ? firstKept(view, retention) : undefined;
    if (first !== undefined && keptFrom !== undefined && first !== keptFrom) {
      report({
        kind: retention !== undefined && first > keptFrom ? "over-trimmed" : "gap",
        seq: keptFrom,
        message: `complete read by ${view.readerId} starts at seq ${first}, not ${keptFrom}${retention === undefined ? "" : ` (retention ${describeRetention(retention)})`}`,
      });
    }
    if (retention === undefined && view.read !== undefined && first !== undefined && first > view.read.from) {
      report({
        kind: "over-trimmed",
        seq: view.read.from,
        message: `${view.readerId} asked from seq ${view.read.from} and got seq ${first} first, but nothing is ever removed from this stream`,
      });
    }
    for (const entry of view.entries) {
      if (previous !== undefined) {
        if (entry.seq === previous.seq && entry.messageId !== previous.messageId) {
          report({
            kind: "reused-sequence",
            seq: entry.seq,
            message: `${view.readerId} saw seq ${entry.seq} twice, as ${previous.messageId} and as ${entry.messageId}`,
          });
        } else if (entry.seq <= previous.seq) {
          report({
            kind: "out-of-order",
            seq: entry.seq,
            message: `${view.readerId} saw seq ${entry.seq} after seq ${previous.seq}`,
          });
        } else if (entry.seq > previous.seq + 1) {
          report({
            kind: "gap",
            seq: previous.seq + 1,
            message: `${view.readerId} jumped from seq ${previous.seq} to seq ${entry.seq}`,
          });
        }
      }
      previous = entry;
    }
  }

  // Across readers: one message per sequence, one sequence per message.
  const bySeq = new Map<number, Sighting>();
  const seqsOfMessage = new Map<string, Set<number>>();
  const reportedSeqs = new Set<number>();
  for (const view of readers) {
    for (const entry of view.entries) {
      const first = bySeq.get(entry.seq);
      if (first === undefined) bySeq.set(entry.seq, { entry, readerId: view.readerId });
      else if (
        (first.entry.messageId !== entry.messageId || first.entry.payload !== entry.payload) &&
        first.readerId !== view.readerId &&
        !reportedSeqs.has(entry.seq)
      ) {
        reportedSeqs.add(entry.seq);
        report({
          kind: "divergent",
          seq: entry.seq,
          message: `at seq ${entry.seq} ${first.readerId} saw ${first.entry.messageId} ${JSON.stringify(first.entry.payload)} but ${view.readerId} saw ${entry.messageId} ${JSON.stringify(entry.payload)}`,
        });
      }
      const seqs = seqsOfMessage.get(entry.messageId) ?? new Set<number>();
      seqs.add(entry.seq);
      seqsOfMessage.set(entry.messageId, seqs);
    }
  }
  for (const [messageId, seqs] of seqsOfMessage) {
    if (seqs.size > 1) {
      report({
        kind: "duplicate",
        messageId,
        message: `message ${messageId} is in the stream at seqs ${[...seqs].sort((a, b) => a - b).join(", ")}`,
      });
    }
  }

  // Against the appends: nothing made up, acknowledged sequences honoured, nothing acknowledged lost.
  // Every sighting, not only the first per sequence: one reader may be the only one shown a fake.
  const phantomsReported = new Set<string>();
  for (const view of readers) {
    for (const entry of view.entries) {
      const { seq, messageId, payload } = entry;
      const key = `${seq}\u0000${messageId}\u0000${payload}`;
      if (phantomsReported.has(key)) continue;
      const payloads = appendedPayloads.get(messageId);
      let why: string | undefined;
      if (payloads === undefined) why = "which was never appended";
      else if (!everAccepted.has(messageId)) why = "which was only ever rejected";
      else if (!payloads.has(payload))
        why = `with payload ${JSON.stringify(payload)}, which no producer sent`;
      if (why === undefined) continue;
      phantomsReported.add(key);
      report({
        kind: "phantom",
        seq,
        messageId,
        message: `${view.readerId} saw ${messageId} at seq ${seq}, ${why}`,
      });
    }
  }
  for (const [messageId, seq] of ackedSeqOf) {
    const seen = bySeq.get(seq);
    if (seen !== undefined && seen.entry.messageId !== messageId) {
      report({
        kind: "wrong-sequence",
        seq,
        messageId,
        message: `${messageId} was acknowledged at seq ${seq} but ${seen.readerId} saw ${seen.entry.messageId} there`,
      });
    }
  }
  for (const view of readers) {
    if (!view.complete) continue;
    const present = new Set(view.entries.map((e) => e.messageId));
    // Retention takes the oldest messages: those below where the copy must start may be gone (for
    // an age limit, below where it does start).
    const keptFrom = firstKept(view, retention) ?? view.entries[0]?.seq ?? Number.POSITIVE_INFINITY;
    for (const [messageId, seq] of ackedSeqOf) {
      if (seq >= keptFrom && !present.has(messageId)) {
        report({
          kind: "lost",
          seq,
          messageId,
          message: `${messageId}, acknowledged at seq ${seq}, is missing from the complete read by ${view.readerId}`,
        });
      }
    }
  }
  if (retention !== undefined) for (const v of resurrected(readers)) report(v);
  return out;
}

/**
 * Where a complete copy must start: 1 without retention; with a count limit, just far enough back
 * to hold that many messages (appends trim to the limit); with an age limit, anywhere.
 */
function firstKept(view: ReaderView, retention: StreamRetention | undefined): number | undefined {
  if (retention === undefined) return 1;
  const last = view.entries.at(-1)?.seq;
  if (!("maxMessages" in retention) || last === undefined) return undefined;
  return Math.max(1, last - retention.maxMessages + 1);
}

function describeRetention(retention: StreamRetention): string {
  return "maxMessages" in retention ? `${retention.maxMessages} messages` : `${retention.maxAgeMs} ms`;
}

/**
 * Messages read again once trimmed. A read from `from` whose first message is at a later sequence
 * shows that everything below that sequence was trimmed when it was served (sequences are dense and
 * retention takes the oldest first), and trimming never comes undone: a read called after that one
 * was answered must not return any of them.
 */
function resurrected(readers: readonly ReaderView[]): StreamViolation[] {
  const trims: { readonly readerId: string; readonly below: number; readonly returnMs: number }[] = [];
  for (const view of readers) {
    const first = view.entries[0]?.seq;
    if (view.read !== undefined && first !== undefined && first > view.read.from)
      trims.push({ readerId: view.readerId, below: first, returnMs: view.read.returnMs });
  }
  const out: StreamViolation[] = [];
  for (const view of readers) {
    const read = view.read;
    if (read === undefined) continue;
    let trim: (typeof trims)[number] | undefined;
    for (const t of trims)
      if (t.returnMs < read.callMs && (trim === undefined || t.below > trim.below)) trim = t;
    const back = trim === undefined ? undefined : view.entries.find((e) => e.seq < (trim?.below ?? 0));
    if (trim === undefined || back === undefined) continue;
    out.push({
      kind: "resurrected",
      seq: back.seq,
      messageId: back.messageId,
      message: `${view.readerId} (called at ${read.callMs}ms) got seq ${back.seq}, trimmed before ${trim.readerId} was answered at ${trim.returnMs}ms (its first message was seq ${trim.below})`,
    });
  }
  return out;
}

/** A consumer group's history: what the stream held, what the group did, and where it ended. */
export interface ConsumerGroupHistory {
  /** Every sequence of the group's stream the group covers (from its start position), ascending. */
  readonly streamSeqs: readonly number[];
  /** Each hand-out of a message to a consumer, with the delivery count the server reported. */
  readonly deliveries: readonly {
    readonly consumer: string;
    readonly seq: number;
    readonly deliveryCount: number;
  }[];
  /** Acks the server confirmed. */
  readonly acks: readonly { readonly consumer: string; readonly seq: number }[];
  /**
   * Acks whose answer never came (timed out): each may or may not have taken effect, so a message
   * with one is not lost for being gone, but an unconfirmed ack proves nothing either.
   */
  readonly unconfirmedAcks?: readonly { readonly consumer: string; readonly seq: number }[];
  /** The group's final state: its cursor (last sequence handed out at least once) and what is in flight. */
  readonly final: { readonly deliveredThroughSeq: number; readonly pendingSeqs: readonly number[] };
  /** The dead-letter stream's contents: each entry names the original sequence it carries. */
  readonly deadLetters: readonly { readonly dlqSeq: number; readonly originalSeq: number }[];
  /** The group's delivery limit. */
  readonly maxDeliveries: number;
}

/** The kinds of consumer-group violation. */
export type ConsumerGroupViolationKind =
  /** Handed out at least once, yet neither acked, in flight nor dead-lettered. */
  | "lost"
  /** One original message in the dead-letter stream more than once. */
  | "dead-lettered-twice"
  /** A message whose ack the server confirmed, later dead-lettered or still in flight. */
  | "acked-not-settled"
  /** Dead-lettered and still in flight at the end. */
  | "dead-lettered-still-pending"
  /** Delivered more times than the limit allows. */
  | "over-delivered"
  /** A delivery, ack or dead letter for a sequence that is not in the stream or beyond the cursor. */
  | "phantom";

/** One consumer-group violation. */
export interface ConsumerGroupViolation {
  readonly kind: ConsumerGroupViolationKind;
  readonly seq: number;
  readonly message: string;
}

/** Checks a consumer group: every message ends up acked, in flight or dead-lettered exactly once. */
export function checkConsumerGroup(h: ConsumerGroupHistory): ConsumerGroupViolation[] {
  const out: ConsumerGroupViolation[] = [];
  const inStream = new Set(h.streamSeqs);
  const acked = new Set(h.acks.map((a) => a.seq));
  const maybeAcked = new Set((h.unconfirmedAcks ?? []).map((a) => a.seq));
  const pending = new Set(h.final.pendingSeqs);
  const deadLettered = new Map<number, number[]>();
  for (const d of h.deadLetters) {
    const list = deadLettered.get(d.originalSeq) ?? [];
    list.push(d.dlqSeq);
    deadLettered.set(d.originalSeq, list);
  }

  const known = (seq: number, what: string) => {
    if (!inStream.has(seq))
      out.push({ kind: "phantom", seq, message: `${what} seq ${seq}, which is not in the stream` });
    else if (seq > h.final.deliveredThroughSeq) {
      out.push({
        kind: "phantom",
        seq,
        message: `${what} seq ${seq}, beyond the group's cursor ${h.final.deliveredThroughSeq}`,
      });
    }
  };
  const overDelivered = new Set<number>();
  for (const d of h.deliveries) {
    known(d.seq, `delivery to ${d.consumer} of`);
    if (d.deliveryCount > h.maxDeliveries && !overDelivered.has(d.seq)) {
      overDelivered.add(d.seq);
      out.push({
        kind: "over-delivered",
        seq: d.seq,
        message: `seq ${d.seq} was delivered to ${d.consumer} as delivery ${d.deliveryCount}, over the limit of ${h.maxDeliveries}`,
      });
    }
  }
  for (const a of h.acks) known(a.seq, `ack by ${a.consumer} of`);
  for (const seq of pending) known(seq, "in flight:");
  for (const [seq, dlqSeqs] of deadLettered) {
    known(seq, "dead letter of");
    if (dlqSeqs.length > 1) {
      out.push({
        kind: "dead-lettered-twice",
        seq,
        message: `seq ${seq} is in the dead-letter stream ${dlqSeqs.length} times (at ${dlqSeqs.join(", ")})`,
      });
    }
    if (acked.has(seq)) {
      out.push({ kind: "acked-not-settled", seq, message: `seq ${seq} was acked and then dead-lettered` });
    }
    if (pending.has(seq)) {
      out.push({
        kind: "dead-lettered-still-pending",
        seq,
        message: `seq ${seq} is dead-lettered and still in flight`,
      });
    }
  }
  for (const seq of pending) {
    if (acked.has(seq))
      out.push({ kind: "acked-not-settled", seq, message: `seq ${seq} was acked and is still in flight` });
  }
  for (const seq of h.streamSeqs) {
    if (seq > h.final.deliveredThroughSeq) continue; // not handed out yet: backlog, not lost
    if (!acked.has(seq) && !maybeAcked.has(seq) && !pending.has(seq) && !deadLettered.has(seq)) {
      out.push({
        kind: "lost",
        seq,
        message: `seq ${seq} was handed out (cursor at ${h.final.deliveredThroughSeq}) but is neither acked, in flight nor dead-lettered`,
      });
    }
  }
  return out;
}
