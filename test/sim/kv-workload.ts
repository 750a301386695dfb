// A client workload for the key-value half: a few concurrent clients doing puts, gets, conditional
// puts, deletes and increments on a handful of keys (so operations conflict), retrying after
// timeouts, and recording everything in the linearizability checker's history format. It talks to
// the system under test only through `KvTarget`, which the cluster harness implements.
import { assert, assertNever } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { KvInput, KvOperation, KvOutput } from "./kv-model.js";
import { pickWeighted } from "./pick-weighted.js";
import type { Scheduler } from "./scheduler.js";

/**
 * How a submitted operation ended. `ok`: the system answered. `failed`: a definite failure that the
 * system guarantees had no effect (validation, "not leader" before proposing); the operation is left
 * out of the history. Anything uncertain must not be reported as `failed`: report nothing and let the
 * workload's timeout record it as unknown.
 */
export type SubmitResult =
  | { readonly kind: "ok"; readonly output: KvOutput }
  | { readonly kind: "failed"; readonly reason: string };

/** The system under test as the workload sees it: submit an operation, get one callback (or none). */
export interface KvTarget {
  submit(clientId: number, input: KvInput, done: (result: SubmitResult) => void): void;
}

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
}

/** What the workload did, for reports. */
export interface KvWorkloadCounters {
  issued: number;
  ok: number;
  failed: number;
  timedOut: number;
  /** Answers that came after their timeout (recorded, since they narrow the operation's interval). */
  lateReplies: number;
}

/** One attempt's record while it is open. */
interface Attempt {
  readonly clientId: number;
  readonly input: KvInput;
  readonly callMs: number;
  outcome: { kind: "pending" } | { kind: "ok"; output: KvOutput; returnMs: number } | { kind: "failed" };
}

/**
 * Concurrent key-value clients on a simulated clock. Each client runs one operation at a time; after
 * a timeout it retries the same request (a new history entry; the first stays unknown, since it may
 * still take effect).
 */
export class KvWorkload {
  readonly #scheduler: Scheduler;
  readonly #prng: Prng;
  readonly #target: KvTarget;
  readonly #options: KvWorkloadOptions;
  readonly #attempts: Attempt[] = [];
  readonly #lastVersion: Map<string, number>[] = [];
  #outstanding = 0;
  #stopped = false;
  #writeCounter = 0;
  readonly counters: KvWorkloadCounters = { issued: 0, ok: 0, failed: 0, timedOut: 0, lateReplies: 0 };

  /** Creates the workload; nothing happens until `start`. */
  constructor(scheduler: Scheduler, prng: Prng, target: KvTarget, options: KvWorkloadOptions) {
    assert(options.clients >= 1 && options.keys >= 1, "need at least one client and one key");
    assert(options.opTimeoutMs >= 1 && options.thinkMaxMs >= options.thinkMinMs, "bad workload timing");
    const { get, put, putIf, delete: del, incr } = options.mix;
    assert(get + put + putIf + del + incr > 0, "the operation mix is empty");
    this.#scheduler = scheduler;
    this.#prng = prng;
    this.#target = target;
    this.#options = options;
  }

  /** Starts every client. */
  start(): void {
    for (let c = 0; c < this.#options.clients; c++) {
      this.#lastVersion.push(new Map());
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

  /** The history so far: answered attempts as completed, open or timed-out ones as unknown. */
  history(): KvOperation[] {
    const out: KvOperation[] = [];
    for (const a of this.#attempts) {
      switch (a.outcome.kind) {
        case "ok":
          out.push({
            clientId: a.clientId,
            input: a.input,
            callMs: a.callMs,
            outcome: { kind: "ok", output: a.outcome.output, returnMs: a.outcome.returnMs },
          });
          break;
        case "pending":
          out.push({ clientId: a.clientId, input: a.input, callMs: a.callMs, outcome: { kind: "unknown" } });
          break;
        case "failed":
          break;
        default:
          assertNever(a.outcome, "attempt outcome");
      }
    }
    return out;
  }

  #think(): number {
    return this.#prng.range(this.#options.thinkMinMs, this.#options.thinkMaxMs);
  }

  #next(clientId: number): void {
    if (this.#stopped || this.counters.issued >= this.#options.operationsMax) return;
    this.#issue(clientId, this.#randomInput(clientId), 0);
  }

  #issue(clientId: number, input: KvInput, retry: number): void {
    if (this.#stopped || this.counters.issued >= this.#options.operationsMax) return;
    const attempt: Attempt = { clientId, input, callMs: this.#scheduler.nowMs, outcome: { kind: "pending" } };
    this.#attempts.push(attempt);
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
        this.#retryOrMoveOn(clientId, input, retry);
      },
      `client ${clientId} timeout`,
    );
    this.#target.submit(clientId, input, (result) => {
      assert(!answered, `client ${clientId}: the target answered one operation twice`);
      answered = true;
      if (result.kind === "ok") {
        attempt.outcome = { kind: "ok", output: result.output, returnMs: this.#scheduler.nowMs };
        this.#remember(clientId, input, result.output);
      } else {
        attempt.outcome = { kind: "failed" };
      }
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
        this.counters.failed++;
        this.#retryOrMoveOn(clientId, input, retry);
      }
    });
  }

  #retryOrMoveOn(clientId: number, input: KvInput, retry: number): void {
    if (retry < this.#options.retriesMax) {
      this.#scheduler.after(
        this.#options.retryBackoffMs,
        () => this.#issue(clientId, input, retry + 1),
        `client ${clientId} retry`,
      );
    } else {
      this.#scheduler.after(this.#think(), () => this.#next(clientId), `client ${clientId} next`);
    }
  }

  /** Tracks the last version a client saw per key, so its conditional puts are often current. */
  #remember(clientId: number, input: KvInput, output: KvOutput): void {
    const versions = this.#lastVersion[clientId];
    if (versions === undefined) return;
    if (output.kind === "value" || output.kind === "written" || output.kind === "incremented") {
      versions.set(input.key, output.version);
    }
  }

  #randomInput(clientId: number): KvInput {
    const key = `k${this.#prng.below(this.#options.keys)}`;
    const { mix } = this.#options;
    const op = pickWeighted<KvInput["op"]>(this.#prng, [
      ["get", mix.get],
      ["put", mix.put],
      ["put-if", mix.putIf],
      ["delete", mix.delete],
      ["incr", mix.incr],
    ]);
    assert(op !== undefined, "the operation mix is empty");
    // Values are unique per logical write, so a read names the write it saw.
    const value = `c${clientId}-w${this.#writeCounter++}`;
    switch (op) {
      case "get":
        return { op, key };
      case "put":
        return { op, key, value };
      case "put-if": {
        const known = this.#lastVersion[clientId]?.get(key);
        if (known === undefined || this.#prng.chance(1, 4))
          return { op, key, value, condition: { kind: "absent" } };
        return { op, key, value, condition: { kind: "version", version: known } };
      }
      case "delete":
        return { op, key };
      case "incr":
        return { op, key, by: 1 + this.#prng.below(5) };
      default:
        return assertNever(op, "kv op");
    }
  }
}
