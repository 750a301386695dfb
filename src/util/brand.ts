import { assert } from "./assert.js";

/** A number (or other primitive) tagged with a compile-time-only name, so a `Term` is no `LogIndex`. */
export type Brand<T, Name extends string> = T & { readonly __brand: Name };

/** Whether `n` is an integer in [0, 2^53 - 1]: every id, index and counter in Cairn is one. */
export function isNonNegativeSafeInteger(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Makes a constructor for a branded non-negative integer that asserts its input; the only place a
 * cast to the brand happens, so every branded value was checked once.
 */
export function brandedInteger<Name extends string>(name: Name): (n: number) => Brand<number, Name> {
  return (n: number): Brand<number, Name> => {
    assert(isNonNegativeSafeInteger(n), `${name} must be a non-negative safe integer, got ${String(n)}`);
    return n as Brand<number, Name>;
  };
}
