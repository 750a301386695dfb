// A client workload for the key-value half: a few concurrent clients doing puts, gets, conditional
// puts, deletes and increments on a handful of keys (so operations conflict), retrying after
// timeouts, and recording everything in the linearizability checker's history format. It talks to
// the system under test only through `KvTarget`, which the cluster harness implements.
import { assert, assertNever } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { History, Operation } from "./history.js";
import { type KvInput, type KvOutput, kvModel, sameKvOutput } from "./kv-model.js";
import { type CheckResult, checkLinearizable } from "./linearizability.js";
import { pickWeighted } from "./pick-weighted.js";
import type { WorkloadClock } from "./scheduler.js";

/**
 * How a submitted operation ended. `ok`: the system answered. `failed`: a definite failure that the
 * system guarantees had no effect (validation, "not leader" before proposing); the operation is left
 * out of the history. Anything uncertain must not be reported as `failed`: report nothing and let the
 * workload's timeout record it as unknown.
 */
export type SubmitResult<O = KvOutput> =
  | { readonly kind: "ok"; readonly output: O }
  | { readonly kind: "failed"; readonly reason: string }
  /**
   * The answer is lost for sure (a broken connection, a server that says the outcome is unknown):
   * recorded as unknown, as a timeout is, but the client moves on at once instead of waiting for
   * its timeout. The simulator's targets stay silent instead; real clients learn this early.
   */
  | { readonly kind: "unknown"; readonly reason: string };

/**
 * The system under test as the workload sees it: submit an operation, get one callback (or none).
 * `requestId` names the logical operation: with idempotent retries every attempt of one operation
 * carries the same id, which the harness sends as the idempotency key.
 */
export interface KvTarget<I = KvInput, O = KvOutput> {
  submit(clientId: number, input: I, done: (result: SubmitResult<O>) => void, requestId: string): void;
}

/** The operations a workload mixes. */
export type KvOpKind = "get" | "put" | "put-if" | "delete" | "incr";

/**
 * One key-value specification as the workload speaks it: how the checker judges a history (its
 * model, and anything the history implies besides the requests), how to build each kind of request,
 * and what a client learns from an answer for its next conditional request. The checker's own
 * model uses per-key versions (level 1); the service's uses revisions and TTLs (level 2).
 */
export interface KvDialect<I extends { readonly op: KvOpKind; readonly key: string }, O> {
  /** The linearizability verdict on a history of these requests. */
  check(history: History<I, O>): CheckResult;
  /** A request of kind `op` on `key`; `value` is unique per write, `known` what the client last learned of the key. */
  input(prng: Prng, op: KvOpKind, key: string, value: string, known: number | undefined): I;
  /** What a client learns about the key from an answer (a version or a revision), if anything. */
  learned(output: O): number | undefined;
  /** Whether two answers are the same (a retried write must get its first answer again). */
  sameOutput(a: O, b: O): boolean;
}

/** The dialect of the checker's own model (kv-model.ts): conditional puts name a per-key version. */
export const kvVersionDialect: KvDialect<KvInput, KvOutput> = {
  check: (history) => checkLinearizable(kvModel, history),
  input(prng, op, key, value, known) {
    switch (op) {
      case "get":
        return { op, key };
      case "put":
        return { op, key, value };
      case "put-if":
        if (known === undefined || prng.chance(1, 4))
          return { op, key, value, condition: { kind: "absent" } };
        return { op, key, value, condition: { kind: "version", version: known } };
      case "delete":
        return { op, key };
      case "incr":
        return { op, key, by: 1 + prng.below(5) };
      default:
        return assertNever(op, "kv op");
    }
  },
  learned: (output) =>
    output.kind === "value" || output.kind === "written" || output.kind === "incremented"
      ? output.version
      : undefined,
  sameOutput: sameKvOutput,
};

/** Relative weights of each operation (integers; 0 disables one). */
export interface KvMix {
  readonly get: number;
  readonly put: number;
  readonly putIf: number;
  readonly delete: number;
  readonly incr: number;
}

/** Settings for a {@link KvWorkload}. */
export interface KvWorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  /** Operations (attempts, retries included) issued in total before the workload stops. */
  readonly operationsMax: number;
  readonly mix: KvMix;
  /** How long a client waits for an answer before recording the operation as unknown. */
  readonly opTimeoutMs: number;
  /** Pause between a client's operations, uniform in [min, max]. */
  readonly thinkMinMs: number;
  readonly thinkMaxMs: number;
  /** Pause before retrying after a timeout or a definite failure. */
  readonly retryBackoffMs: number;
  /** Retries of one logical operation before the client moves on. */
  readonly retriesMax: number;
  /**
   * Whether retries reuse the operation's request id (an idempotency key): the system applies the
   * operation at most once and answers every attempt with the original result, so the attempts are
   * recorded as one operation. Otherwise each attempt is a separate operation.
   */
  readonly idempotentRetries: boolean;
}

/** What the workload did, for reports. */
export interface KvWorkloadCounters {
  issued: number;
  ok: number;
  failed: number;
  timedOut: number;
  /** Answers that came after their timeout (recorded, since they narrow the operation's interval). */
  lateReplies: number;
  /** Attempts whose answer the target reported lost before the timeout (recorded as unknown). */
  lost: number;
  /** With idempotent retries: attempts of one operation answered with different results (a bug). */
  idempotencyViolations: number;
}

/** One attempt at a logical operation. */
interface Attempt<O> {
  readonly callMs: number;
  outcome: { kind: "pending" } | { kind: "ok"; output: O; returnMs: number } | { kind: "failed" };
}

/** One logical operation and its attempts (one unless it was retried). */
interface Logical<I, O> {
  readonly clientId: number;
  readonly input: I;
  readonly requestId: string;
  readonly attempts: Attempt<O>[];
  /** The first answer any attempt got, which every later answer must repeat (idempotent retries). */
  firstOutput?: O;
}

/**
 * Concurrent key-value clients on a simulated clock. Each client runs one operation at a time; after
 * a timeout or a definite failure it retries the same request, up to `retriesMax` times.
 */
export class KvWorkload<I extends { readonly op: KvOpKind; readonly key: string }, O> {
  readonly #scheduler: WorkloadClock;
  readonly #prng: Prng;
  readonly #target: KvTarget<I, O>;
  readonly #options: KvWorkloadOptions;
  readonly #dialect: KvDialect<I, O>;
  readonly #operations: Logical<I, O>[] = [];
  /** Per client, what it last learned of each key (for conditional requests). */
  readonly #known: Map<string, number>[] = [];
  #outstanding = 0;
  #stopped = false;
  #writeCounter = 0;
  readonly counters: KvWorkloadCounters = {
    issued: 0,
    ok: 0,
    failed: 0,
    timedOut: 0,
    lateReplies: 0,
    lost: 0,
    idempotencyViolations: 0,
  };

  /** Creates the workload; nothing happens until `start`. */
  constructor(
    scheduler: WorkloadClock,
    prng: Prng,
    target: KvTarget<I, O>,
    options: KvWorkloadOptions,
    dialect: KvDialect<I, O>,
  ) {
    assert(options.clients >= 1 && options.keys >= 1, "need at least one client and one key");
    assert(options.opTimeoutMs >= 1 && options.thinkMaxMs >= options.thinkMinMs, "bad workload timing");
    const { get, put, putIf, delete: del, incr } = options.mix;
    assert(get + put + putIf + del + incr > 0, "the operation mix is empty");
    this.#scheduler = scheduler;
    this.#prng = prng;
    this.#target = target;
    this.#options = options;
    this.#dialect = dialect;
  }

  /** Starts every client. */
  start(): void {
    for (let c = 0; c < this.#options.clients; c++) {
      this.#known.push(new Map());
      this.#scheduler.after(this.#think(), () => this.#next(c), `client ${c} start`);
    }
  }

  /** Stops issuing new operations; answers to open ones are still recorded. */
  stop(): void {
    this.#stopped = true;
  }

  /** Whether every client has finished: the budget is spent (or stopped) and nothing is waiting. */
  get done(): boolean {
    return (this.#stopped || this.counters.issued >= this.#options.operationsMax) && this.#outstanding === 0;
  }

  /**
   * The history so far: answered operations as completed, open or timed-out ones as unknown, and
   * definitely failed ones left out. With idempotent retries, one entry per logical operation from
   * its first call to its first answer; otherwise one entry per attempt.
   */
  history(): Operation<I, O>[] {
    const out: Operation<I, O>[] = [];
    for (const op of this.#operations) {
      const { clientId, input } = op;
      if (this.#options.idempotentRetries) {
        const first = op.attempts[0];
        assert(first !== undefined, "an operation without attempts");
        let answered: { output: O; returnMs: number } | undefined;
        for (const a of op.attempts) {
          if (a.outcome.kind === "ok" && (answered === undefined || a.outcome.returnMs < answered.returnMs)) {
            answered = a.outcome;
          }
        }
        if (answered !== undefined) {
          out.push({ clientId, input, callMs: first.callMs, outcome: { kind: "ok", ...answered } });
        } else if (op.attempts.some((a) => a.outcome.kind === "pending")) {
          out.push({ clientId, input, callMs: first.callMs, outcome: { kind: "unknown" } });
        }
        continue;
      }
      for (const a of op.attempts) {
        switch (a.outcome.kind) {
          case "ok":
            out.push({
              clientId,
              input,
              callMs: a.callMs,
              outcome: { kind: "ok", output: a.outcome.output, returnMs: a.outcome.returnMs },
            });
            break;
          case "pending":
            out.push({ clientId, input, callMs: a.callMs, outcome: { kind: "unknown" } });
            break;
          case "failed":
            break;
          default:
            assertNever(a.outcome, "attempt outcome");
        }
      }
    }
    return out;
  }

  /**
   * Each logical operation as its client saw it, retries included: milliseconds from its first call
   * to its first answer, or undefined when no attempt was answered (every one failed or timed out).
   */
  operationLatencies(): (number | undefined)[] {
    return this.#operations.map((op) => {
      const first = op.attempts[0];
      let answeredMs: number | undefined;
      for (const a of op.attempts) {
        if (a.outcome.kind === "ok" && (answeredMs === undefined || a.outcome.returnMs < answeredMs))
          answeredMs = a.outcome.returnMs;
      }
      return first === undefined || answeredMs === undefined ? undefined : answeredMs - first.callMs;
    });
  }

  #think(): number {
    return this.#prng.range(this.#options.thinkMinMs, this.#options.thinkMaxMs);
  }

  #next(clientId: number): void {
    if (this.#stopped || this.counters.issued >= this.#options.operationsMax) return;
    const input = this.#randomInput(clientId);
    const op: Logical<I, O> = {
      clientId,
      input,
      requestId: `c${clientId}-op${this.#operations.length}`,
      attempts: [],
    };
    this.#operations.push(op);
    this.#issue(op, 0);
  }

  #issue(op: Logical<I, O>, retry: number): void {
    if (this.#stopped || this.counters.issued >= this.#options.operationsMax) return;
    const { clientId, input } = op;
    const attempt: Attempt<O> = { callMs: this.#scheduler.nowMs, outcome: { kind: "pending" } };
    op.attempts.push(attempt);
    const requestId = this.#options.idempotentRetries ? op.requestId : `${op.requestId}-a${retry}`;
    this.counters.issued++;
    this.#outstanding++;
    let settled = false; // the client has moved on (answer or timeout)
    let answered = false;
    const timer = this.#scheduler.after(
      this.#options.opTimeoutMs,
      () => {
        settled = true;
        this.#outstanding--;
        this.counters.timedOut++;
        this.#retryOrMoveOn(op, retry);
      },
      `client ${clientId} timeout`,
    );
    const done = (result: SubmitResult<O>) => {
      assert(!answered, `client ${clientId}: the target answered one operation twice`);
      answered = true;
      if (result.kind === "ok") {
        attempt.outcome = { kind: "ok", output: result.output, returnMs: this.#scheduler.nowMs };
        this.#remember(clientId, input, result.output);
        if (op.firstOutput === undefined) op.firstOutput = result.output;
        else if (
          // Each attempt of a read reads afresh (an idempotency key covers writes only), so two
          // attempts of one get may rightly see different values.
          input.op !== "get" &&
          this.#options.idempotentRetries &&
          !this.#dialect.sameOutput(op.firstOutput, result.output)
        ) {
          this.counters.idempotencyViolations++;
        }
      } else if (result.kind === "failed") {
        attempt.outcome = { kind: "failed" };
      }
      // An unknown result leaves the attempt pending: it may have taken effect.
      if (settled) {
        // Too late for the client, but still true: the operation happened within [call, now].
        if (result.kind === "ok") this.counters.lateReplies++;
        return;
      }
      settled = true;
      this.#scheduler.cancel(timer);
      this.#outstanding--;
      if (result.kind === "ok") {
        this.counters.ok++;
        this.#scheduler.after(this.#think(), () => this.#next(clientId), `client ${clientId} next`);
      } else {
        if (result.kind === "unknown") this.counters.lost++;
        else this.counters.failed++;
        this.#retryOrMoveOn(op, retry);
      }
    };
    this.#target.submit(clientId, input, done, requestId);
  }

  #retryOrMoveOn(op: Logical<I, O>, retry: number): void {
    const { clientId } = op;
    if (retry < this.#options.retriesMax) {
      this.#scheduler.after(
        this.#options.retryBackoffMs,
        () => this.#issue(op, retry + 1),
        `client ${clientId} retry`,
      );
    } else {
      this.#scheduler.after(this.#think(), () => this.#next(clientId), `client ${clientId} next`);
    }
  }

  /** Tracks what a client last learned per key, so its conditional requests are often current. */
  #remember(clientId: number, input: I, output: O): void {
    const learned = this.#dialect.learned(output);
    if (learned !== undefined) this.#known[clientId]?.set(input.key, learned);
  }

  #randomInput(clientId: number): I {
    const key = `k${this.#prng.below(this.#options.keys)}`;
    const { mix } = this.#options;
    const op = pickWeighted<KvOpKind>(this.#prng, [
      ["get", mix.get],
      ["put", mix.put],
      ["put-if", mix.putIf],
      ["delete", mix.delete],
      ["incr", mix.incr],
    ]);
    assert(op !== undefined, "the operation mix is empty");
    // Values are unique per logical write, so a read names the write it saw.
    const value = `c${clientId}-w${this.#writeCounter++}`;
    return this.#dialect.input(this.#prng, op, key, value, this.#known[clientId]?.get(key));
  }
}
