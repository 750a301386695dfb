// What the TCP protocol adapters (Redis, text) do with a failure that is neither a CairnError (an
// expected failure with a stable code, which each protocol maps through its own table) nor a broken
// invariant: a bug in an adapter or a service, a TypeError, a RangeError. Such a failure must not
// take the node down with every other client on it: the client gets the protocol's internal-error
// reply and the node logs the failure with its stack, once per distinct stack, so a bug hit by every
// request does not flood the log. A broken invariant (AssertionError) still stops the process, as
// the house rule says: it means state known to be wrong, which no reply can excuse.
import { AssertionError, type Logger, lineLogger } from "../util/index.js";

/** Lines on stderr: where an adapter started without a logger (a test, a tool) writes. */
export const stderrLogger: Logger = lineLogger((line) => process.stderr.write(`${line}\n`));

/** Distinct stacks remembered, at most; past this a new stack is still logged but not remembered. */
const stacksRememberedMax = 256;

/** Handles unexpected failures of one server: logs each distinct one once, re-raises broken invariants. */
export class UnexpectedFailures {
  readonly #log: Logger;
  readonly #seen = new Map<string, number>();

  /** `server` names the adapter (`redis`, `text`, `grpc`): the component of its entries in `log`. */
  constructor(server: string, log: Logger) {
    this.#log = log.child({ component: server });
  }

  /**
   * Takes a failure a request raised that is not a CairnError. A broken invariant is thrown again
   * outside the request's promise chain, so the process stops; anything else is logged (the first
   * time its stack is seen) and the caller answers the client with an internal error.
   */
  report(error: unknown, what: string): void {
    if (error instanceof AssertionError) {
      process.nextTick(() => {
        throw error;
      });
      return;
    }
    const stack = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
    const times = this.#seen.get(stack);
    if (times !== undefined) {
      this.#seen.set(stack, times + 1);
      return;
    }
    if (this.#seen.size < stacksRememberedMax) this.#seen.set(stack, 1);
    this.#log.error(`internal error in ${what}; the client got an internal error reply`, {
      err: error instanceof Error ? error : new Error(stack),
    });
  }

  /** How often each distinct failure happened, for tests and diagnostics. */
  counts(): ReadonlyMap<string, number> {
    return this.#seen;
  }
}
