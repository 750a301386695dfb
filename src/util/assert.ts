/**
 * An invariant violation: a state the code proved impossible. Nothing may catch it; the process
 * must stop (fail-stop) rather than go on in a state known to be wrong.
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

/** Throws an {@link AssertionError} when `condition` is false; narrows the type when it holds. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch the compiler proves unreachable; an exhaustive `switch` ends with it. */
export function assertNever(value: never, what = "value"): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
