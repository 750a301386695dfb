// assert() and branded integers: an assertion failure is an AssertionError with the message, and a
// branded constructor refuses anything but a non-negative safe integer.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { AssertionError, assertNever, assert as invariant } from "../../../src/util/assert.js";
import { brandedInteger, isNonNegativeSafeInteger } from "../../../src/util/brand.js";

describe("assert", () => {
  it("passes on true and throws AssertionError with the message on false", () => {
    invariant(true, "never shown");
    assert.throws(
      () => invariant(false, "commit index moved backwards"),
      (e: unknown) => {
        return e instanceof AssertionError && e.message === "commit index moved backwards";
      },
    );
  });

  it("assertNever names the unexpected value", () => {
    assert.throws(() => assertNever("x" as never, "message type"), /unexpected message type: "x"/);
  });
});

describe("brandedInteger", () => {
  const term = brandedInteger("Term");

  it("accepts every non-negative safe integer unchanged", () => {
    fc.assert(fc.property(fc.nat(), (n) => assert.equal(term(n), n)));
    assert.equal(term(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  });

  it("rejects negatives, fractions, NaN, infinities and unsafe integers, naming the brand", () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(() => term(bad), /Term must be a non-negative safe integer/);
      assert.equal(isNonNegativeSafeInteger(bad), false);
    }
    assert.equal(isNonNegativeSafeInteger("1"), false);
  });
});
