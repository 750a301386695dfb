// The shape of a client history as every checker in test/sim reads it: one record per operation a
// client issued, with the interval in simulated time during which it may have taken effect.
import { assert } from "../../src/util/assert.js";

/**
 * How an operation ended, as far as its client knows. `ok`: the client got `output` at `returnMs`.
 * `unknown`: the client timed out or crashed; the operation may have taken effect at any time after
 * its call, or never, so its return is +infinity and its output unconstrained.
 */
export type Outcome<O> =
  | { readonly kind: "ok"; readonly output: O; readonly returnMs: number }
  | { readonly kind: "unknown" };

/** One client operation: what was asked, when, and how it ended. */
export interface Operation<I, O> {
  /** The client (a sequential process) that issued it; used in reports only. */
  readonly clientId: number;
  /** The request, including which operation it is (for the KV model: `{ op: "put", key, value }`). */
  readonly input: I;
  /** Simulated time of the call, in milliseconds. */
  readonly callMs: number;
  readonly outcome: Outcome<O>;
}

/** A history: every operation every client issued, in any order. */
export type History<I, O> = readonly Operation<I, O>[];

/** A completed operation's record (shorthand for tests and generators). */
export function completed<I, O>(
  clientId: number,
  input: I,
  output: O,
  callMs: number,
  returnMs: number,
): Operation<I, O> {
  return { clientId, input, callMs, outcome: { kind: "ok", output, returnMs } };
}

/** A timed-out operation's record: it may or may not have taken effect, at any time after `callMs`. */
export function timedOut<I, O>(clientId: number, input: I, callMs: number): Operation<I, O> {
  return { clientId, input, callMs, outcome: { kind: "unknown" } };
}

/** Asserts that a history is well formed: integer times, and no operation returning before its call. */
export function assertWellFormed<I, O>(history: History<I, O>): void {
  history.forEach((op, i) => {
    assert(Number.isSafeInteger(op.callMs), `operation ${i}: callMs must be an integer, got ${op.callMs}`);
    if (op.outcome.kind === "ok") {
      const { returnMs } = op.outcome;
      assert(Number.isSafeInteger(returnMs), `operation ${i}: returnMs must be an integer, got ${returnMs}`);
      assert(returnMs >= op.callMs, `operation ${i}: returns at ${returnMs} before its call at ${op.callMs}`);
    }
  });
}
