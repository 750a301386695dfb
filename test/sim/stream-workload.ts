// A workload for the message half of Cairn (issue 7), run beside the key-value one at level 2:
// producers append to one or two streams with a message id and an idempotency key, retrying after a
// timeout or a definite failure with the same id; readers read ranges; consumers of one group fetch,
// then ack, nack, terminate or ignore what they got. The second stream may have retention limits,
// so its oldest messages go as it grows or ages. Crashes and leader changes happen in between.
// Once the run has settled, the stream checker (stream-checker.ts) judges every stream against every
// node's copy and the consumer group against its final state and dead-letter stream.
import { assert } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import { pickWeighted } from "./pick-weighted.js";
import type { WorkloadClock } from "./scheduler.js";
import type { SideWorkload } from "./sim-runner.js";
import {
  type AppendRecord,
  checkConsumerGroup,
  checkStream,
  type ReaderView,
  type StreamEntry,
  type StreamRetention,
} from "./stream-checker.js";

/** Settings of a {@link StreamWorkload}; every one follows from the run's seed. */
export interface StreamWorkloadOptions {
  /** Streams appended to: `s0` (which the consumer group reads) and perhaps `s1`. */
  readonly streams: 1 | 2;
  readonly producers: number;
  /** Logical messages (retries excluded) appended in total at most. */
  readonly messagesMax: number;
  readonly readers: number;
  readonly consumers: number;
  /** Messages one fetch asks for at most. */
  readonly fetchMax: number;
  /** The group's ack wait and delivery limit: short and low, so redelivery and dead letters happen. */
  readonly ackWaitMs: number;
  readonly maxDeliveries: number;
  /** How long a client waits for any answer before it counts the request as timed out. */
  readonly timeoutMs: number;
  /** Retries of one append or settle (same message id and idempotency key). */
  readonly retriesMax: number;
  /** Pause between a client's requests, uniform in [0, max]. */
  readonly thinkMaxMs: number;
  /** Relative weights of what a consumer does with a message it fetched. */
  readonly settleMix: {
    readonly ack: number;
    readonly nack: number;
    readonly term: number;
    readonly ignore: number;
  };
  /** Retention limits of `s1` (the stream without a group), if any: its oldest messages go. */
  readonly retention?: StreamRetention;
}

/** The stream that has the run's retention limits, if it has any. */
export const retainedStream = "s1";

/** The stream the consumer group reads (`s1`, when there is one, has no group). */
export const groupStream = "s0";
/** The consumer group's name. */
export const groupName = "g";
/** Where the group's dead letters go (the service's default name for it). */
export const deadLetterStream = `${groupStream}.${groupName}.dlq`;
/** The header that carries the producer's message id (readers see it; the server keeps it). */
export const messageIdHeader = "sim-msg-id";

/** How a stream request ended: an answer, a definite failure (no effect), or a wrong answer. */
export type StreamReply<T> =
  | { readonly kind: "ok"; readonly value: T }
  | { readonly kind: "failed"; readonly reason: string }
  | { readonly kind: "error"; readonly code: string };

/** A message as a consumer got it. */
export interface FetchedMessage extends StreamEntry {
  readonly deliveries: number;
}

/** A fetch's answer: the messages handed out, and which of its `ack` were acknowledged. */
export interface FetchAnswer {
  readonly messages: readonly FetchedMessage[];
  readonly acked: readonly number[];
}

/** What the nodes hold once the run has settled. */
export interface FinalStreamState {
  /** For each stream, each running voter's whole copy (read from its local state). */
  readonly copies: ReadonlyMap<string, readonly ReaderView[]>;
  /** The group, as the leader holds it. */
  readonly group:
    | {
        readonly deliveredThroughSeq: number;
        readonly pendingSeqs: readonly number[];
        readonly deadLetters: readonly { readonly dlqSeq: number; readonly originalSeq: number }[];
      }
    | undefined;
}

/**
 * The cluster as the stream workload sees it. Each call answers once, or never (the client times
 * out): like the key-value target, anything uncertain must stay silent.
 */
export interface StreamTarget {
  /** Creates the streams and the group (creating what exists is a no-op). */
  setUp(clientId: number, options: StreamWorkloadOptions, done: (r: StreamReply<void>) => void): void;
  append(
    clientId: number,
    stream: string,
    messageId: string,
    payload: string,
    done: (r: StreamReply<{ readonly seq: number }>) => void,
  ): void;
  read(
    clientId: number,
    stream: string,
    from: number,
    limit: number,
    done: (r: StreamReply<readonly StreamEntry[]>) => void,
  ): void;
  /** Fetches up to `max`, acknowledging `ack` (the consumer's previous batch) in the same request. */
  fetch(
    clientId: number,
    consumer: string,
    max: number,
    ack: readonly number[],
    done: (r: StreamReply<FetchAnswer>) => void,
  ): void;
  settle(
    clientId: number,
    action: "ack" | "nack" | "term",
    seqs: readonly number[],
    idempotencyKey: string,
    done: (r: StreamReply<{ readonly settled: readonly number[] }>) => void,
  ): void;
  /** Once the run has settled; undefined when no leader is known (convergence reports that). */
  finalState(): FinalStreamState | undefined;
}

/** Client ids of the stream workload start here (the key-value clients use small ones). */
const clientIdBase = 100;

/** Producers, readers and consumers of streams on a simulated clock. */
export class StreamWorkload implements SideWorkload {
  readonly #scheduler: WorkloadClock;
  readonly #prng: Prng;
  readonly #target: StreamTarget;
  readonly #options: StreamWorkloadOptions;
  #stopped = false;
  /** Whether the streams and the group were set up (confirmed) and the clients started. */
  #ready = false;
  #messages = 0;
  #reads = 0;
  #settles = 0;
  readonly #appends = new Map<string, AppendRecord[]>();
  readonly #views = new Map<string, ReaderView[]>();
  readonly #deliveries: { consumer: string; seq: number; deliveryCount: number }[] = [];
  readonly #acks: { consumer: string; seq: number }[] = [];
  readonly #unconfirmedAcks: { consumer: string; seq: number }[] = [];
  /** Acks not settled yet (an attempt or a retry to come), by idempotency key: they may have acked. */
  readonly #acksInFlight = new Map<string, { consumer: string; seqs: readonly number[] }>();
  /** The highest sequence any answer named per stream (readers read below it). */
  readonly #highest = new Map<string, number>();
  /** Wrong answers (errors no correct service gives): each fails the run. */
  readonly #wrong: string[] = [];
  readonly counters = {
    /** 1 once the streams and the group exist and the clients started (0: nothing to check). */
    setUp: 0,
    appends: 0,
    appended: 0,
    /** Appends answered only on a retry (the message id kept them single). */
    ackedOnRetry: 0,
    appendTimeouts: 0,
    reads: 0,
    /** Reads that found the messages they asked for trimmed by retention (they began later). */
    trimmedReads: 0,
    fetches: 0,
    delivered: 0,
    acked: 0,
    nacked: 0,
    terminated: 0,
    settleTimeouts: 0,
  };

  /** Creates the workload; nothing happens until `start`. */
  constructor(scheduler: WorkloadClock, prng: Prng, target: StreamTarget, options: StreamWorkloadOptions) {
    assert(options.producers >= 1 && options.consumers >= 1, "need a producer and a consumer");
    this.#scheduler = scheduler;
    this.#prng = prng;
    this.#target = target;
    this.#options = options;
    for (let s = 0; s < options.streams; s++) {
      this.#appends.set(`s${s}`, []);
      this.#views.set(`s${s}`, []);
    }
  }

  start(): void {
    this.#setUp();
  }

  stop(): void {
    this.#stopped = true;
  }

  #think(): number {
    return this.#prng.range(0, this.#options.thinkMaxMs);
  }

  /**
   * Calls `call` with a callback that settles once: with the answer, or with undefined when the
   * client's timeout comes first (a late answer is dropped, as a client that gave up would).
   */
  #request<T>(
    call: (done: (r: StreamReply<T>) => void) => void,
    settle: (r: StreamReply<T> | undefined) => void,
  ): void {
    let settled = false;
    const timer = this.#scheduler.after(
      this.#options.timeoutMs,
      () => {
        settled = true;
        settle(undefined);
      },
      "stream timeout",
    );
    call((r) => {
      if (settled) return;
      settled = true;
      this.#scheduler.cancel(timer);
      if (r.kind === "error") this.#wrong.push(`a request got ${r.code}, which no correct service answers`);
      settle(r);
    });
  }

  #setUp(): void {
    if (this.#stopped) return;
    this.#request<void>(
      (done) => this.#target.setUp(clientIdBase, this.#options, done),
      (r) => {
        if (r?.kind !== "ok") {
          this.#scheduler.after(100, () => this.#setUp(), "stream setup retry");
          return;
        }
        this.#ready = true;
        this.counters.setUp = 1;
        const o = this.#options;
        for (let p = 0; p < o.producers; p++) this.#later(() => this.#produce(p));
        for (let r = 0; r < o.readers; r++) this.#later(() => this.#read(r));
        for (let c = 0; c < o.consumers; c++) this.#later(() => this.#consume(c));
      },
    );
  }

  #later(run: () => void): void {
    this.#scheduler.after(this.#think(), run, "stream client");
  }

  // ---------------------------------------------------------------- producers

  #produce(producer: number): void {
    if (this.#stopped || this.#messages >= this.#options.messagesMax) return;
    const n = this.#messages++;
    const stream = `s${this.#prng.below(this.#options.streams)}`;
    const messageId = `p${producer}-m${n}`;
    this.#append(producer, stream, messageId, `payload ${n} from producer ${producer}`, 0);
  }

  #append(producer: number, stream: string, messageId: string, payload: string, retry: number): void {
    if (this.#stopped) return;
    const records = this.#appends.get(stream);
    assert(records !== undefined, `unknown stream ${stream}`);
    this.counters.appends++;
    // Recorded as unknown until it settles: an attempt still in flight when the run ends (seed
    // 1001003 at level 2) may have taken effect, and a reader may have seen it.
    const at = records.length;
    records.push({ clientId: producer, messageId, payload, outcome: { kind: "unknown" } });
    this.#request<{ seq: number }>(
      (done) => this.#target.append(clientIdBase + producer, stream, messageId, payload, done),
      (r) => {
        if (r?.kind === "ok") {
          records[at] = {
            clientId: producer,
            messageId,
            payload,
            outcome: { kind: "acked", seq: r.value.seq },
          };
          this.counters.appended++;
          if (retry > 0) this.counters.ackedOnRetry++;
          this.#highest.set(stream, Math.max(this.#highest.get(stream) ?? 0, r.value.seq));
          this.#later(() => this.#produce(producer));
          return;
        }
        if (r === undefined) this.counters.appendTimeouts++;
        records[at] = {
          clientId: producer,
          messageId,
          payload,
          outcome: r === undefined ? { kind: "unknown" } : { kind: "rejected" },
        };
        // Retry with the same message id (and idempotency key): never a second copy.
        if (retry < this.#options.retriesMax) {
          this.#scheduler.after(
            this.#prng.range(20, 200),
            () => this.#append(producer, stream, messageId, payload, retry + 1),
            "stream append retry",
          );
        } else this.#later(() => this.#produce(producer));
      },
    );
  }

  // ---------------------------------------------------------------- readers

  #read(reader: number): void {
    if (this.#stopped) return;
    const stream = `s${this.#prng.below(this.#options.streams)}`;
    const top = this.#highest.get(stream) ?? 0;
    const from = 1 + this.#prng.below(top + 1);
    const limit = this.#prng.range(1, 10);
    const views = this.#views.get(stream);
    assert(views !== undefined, `unknown stream ${stream}`);
    const readerId = `reader ${reader} read #${this.#reads++} from ${from}`;
    this.counters.reads++;
    const callMs = this.#scheduler.nowMs;
    this.#request<readonly StreamEntry[]>(
      (done) => this.#target.read(clientIdBase + 10 + reader, stream, from, limit, done),
      (r) => {
        const read = { from, callMs, returnMs: this.#scheduler.nowMs };
        if (r?.kind === "ok") {
          views.push({ readerId, complete: false, entries: r.value, read });
          if ((r.value[0]?.seq ?? from) > from) this.counters.trimmedReads++;
        }
        this.#later(() => this.#read(reader));
      },
    );
  }

  // ---------------------------------------------------------------- consumers

  /**
   * One round of consumer `c`. Even consumers acknowledge a batch with their next fetch (`held`,
   * one entry for both), odd ones with a settle of its own; nacks and terms always go on their own.
   */
  #consume(c: number, held: readonly number[] = []): void {
    if (this.#stopped) return;
    const consumer = `consumer-${c}`;
    this.counters.fetches++;
    // Until answered, the held acks may or may not have happened (as a settle in flight).
    const heldKey = `${consumer}-fetch-ack-${this.counters.fetches}`;
    if (held.length > 0) this.#acksInFlight.set(heldKey, { consumer, seqs: held });
    this.#request<FetchAnswer>(
      (done) =>
        this.#target.fetch(
          clientIdBase + 20 + c,
          consumer,
          this.#prng.range(1, this.#options.fetchMax),
          held,
          done,
        ),
      (r) => {
        this.#acksInFlight.delete(heldKey);
        if (r?.kind !== "ok") {
          // A failed request's ack may have applied (its fetch failed apart from it, or the answer
          // was lost); its fetch's messages come back once their ack wait ends.
          for (const seq of held) this.#unconfirmedAcks.push({ consumer, seq });
          this.#later(() => this.#consume(c));
          return;
        }
        for (const seq of r.value.acked) this.#acks.push({ consumer, seq });
        this.counters.acked += r.value.acked.length;
        const byAction = { ack: [] as number[], nack: [] as number[], term: [] as number[] };
        for (const m of r.value.messages) {
          this.counters.delivered++;
          this.#deliveries.push({ consumer, seq: m.seq, deliveryCount: m.deliveries });
          const { ack, nack, term, ignore } = this.#options.settleMix;
          const action = pickWeighted<"ack" | "nack" | "term" | "ignore">(this.#prng, [
            ["ack", ack],
            ["nack", nack],
            ["term", term],
            ["ignore", ignore],
          ]);
          if (action !== undefined && action !== "ignore") byAction[action].push(m.seq);
        }
        const ride = c % 2 === 0 ? byAction.ack : [];
        const settles = (["ack", "nack", "term"] as const).filter(
          (a) => byAction[a].length > 0 && !(a === "ack" && ride.length > 0),
        );
        let left = settles.length;
        const next = () => {
          if (--left <= 0) this.#later(() => this.#consume(c, ride));
        };
        if (left === 0) this.#later(() => this.#consume(c, ride));
        for (const action of settles)
          this.#settle(
            c,
            consumer,
            action,
            byAction[action],
            `${consumer}-settle-${this.#settles++}`,
            0,
            false,
            next,
          );
      },
    );
  }

  #settle(
    c: number,
    consumer: string,
    action: "ack" | "nack" | "term",
    seqs: readonly number[],
    idempotencyKey: string,
    retry: number,
    timedOutBefore: boolean,
    next: () => void,
  ): void {
    if (action === "ack") this.#acksInFlight.set(idempotencyKey, { consumer, seqs });
    this.#request<{ settled: readonly number[] }>(
      (done) => this.#target.settle(clientIdBase + 20 + c, action, seqs, idempotencyKey, done),
      (r) => {
        if (r?.kind === "ok") {
          this.#acksInFlight.delete(idempotencyKey);
          if (action === "ack") {
            for (const seq of r.value.settled) this.#acks.push({ consumer, seq });
            this.counters.acked += r.value.settled.length;
          } else if (action === "nack") this.counters.nacked += r.value.settled.length;
          else this.counters.terminated += r.value.settled.length;
          next();
          return;
        }
        if (r === undefined) this.counters.settleTimeouts++;
        const timedOut = timedOutBefore || r === undefined;
        // Retry with the same idempotency key: a settle that happened answers as it did then.
        if (!this.#stopped && retry < this.#options.retriesMax) {
          this.#scheduler.after(
            this.#prng.range(20, 200),
            () => this.#settle(c, consumer, action, seqs, idempotencyKey, retry + 1, timedOut, next),
            "stream settle retry",
          );
          return;
        }
        this.#acksInFlight.delete(idempotencyKey);
        // An attempt whose answer never came may have acked; a definite failure after it proves nothing.
        if (action === "ack" && timedOut)
          for (const seq of seqs) this.#unconfirmedAcks.push({ consumer, seq });
        next();
      },
    );
  }

  // ---------------------------------------------------------------- checks

  problems(): readonly string[] {
    const out = [...this.#wrong];
    // A run whose cluster never answered the setup (long leaderless stretches) never started the
    // clients: there is nothing to check, as a key-value run with no answers has nothing either.
    if (!this.#ready) return out;
    const final = this.#target.finalState();
    if (final === undefined) return out;
    for (const [stream, appends] of this.#appends) {
      const copies = final.copies.get(stream) ?? [];
      if (copies.length === 0) out.push(`stream ${stream}: no node holds it`);
      const retention = stream === retainedStream ? this.#options.retention : undefined;
      for (const v of checkStream(appends, [...(this.#views.get(stream) ?? []), ...copies], retention))
        out.push(`stream ${stream} ${v.kind}: ${v.message}`);
    }
    const group = final.group;
    const copy = final.copies.get(groupStream)?.[0];
    if (group === undefined || copy === undefined) {
      out.push(`consumer group ${groupName}: missing at the end`);
      return out;
    }
    const stillInFlight = [...this.#acksInFlight.values()].flatMap(({ consumer, seqs }) =>
      seqs.map((seq) => ({ consumer, seq })),
    );
    for (const v of checkConsumerGroup({
      streamSeqs: copy.entries.map((e) => e.seq),
      deliveries: this.#deliveries,
      acks: this.#acks,
      unconfirmedAcks: [...this.#unconfirmedAcks, ...stillInFlight],
      final: { deliveredThroughSeq: group.deliveredThroughSeq, pendingSeqs: group.pendingSeqs },
      deadLetters: group.deadLetters,
      maxDeliveries: this.#options.maxDeliveries,
    }))
      out.push(`consumer group ${groupName} ${v.kind}: ${v.message}`);
    return out;
  }
}
