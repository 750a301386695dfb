// The bounded FIFO queue against a plain array as the reference model: random operation sequences
// must agree, and a full queue must refuse instead of growing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BoundedQueue } from "../../../src/util/bounded-queue.js";

type Op = { op: "push"; value: number } | { op: "shift" } | { op: "drain"; max: number } | { op: "clear" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("push" as const), value: fc.integer() }),
  fc.record({ op: fc.constant("shift" as const) }),
  fc.record({ op: fc.constant("drain" as const), max: fc.nat(5) }),
  fc.record({ op: fc.constant("clear" as const) }),
);

describe("BoundedQueue", () => {
  it("behaves like an array capped at its capacity", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(opArb, { maxLength: 200 }), (capacity, ops) => {
        const queue = new BoundedQueue<number>(capacity);
        const model: number[] = [];
        for (const o of ops) {
          switch (o.op) {
            case "push": {
              const accepted = queue.push(o.value);
              assert.equal(accepted, model.length < capacity);
              if (accepted) model.push(o.value);
              break;
            }
            case "shift":
              assert.equal(queue.shift(), model.shift());
              break;
            case "drain":
              assert.deepEqual(queue.drain(o.max), model.splice(0, o.max));
              break;
            case "clear":
              queue.clear();
              model.length = 0;
              break;
          }
          assert.equal(queue.length, model.length);
          assert.equal(queue.peek(), model[0]);
          assert.equal(queue.isFull(), model.length === capacity);
        }
      }),
    );
  });

  it("refuses a push when full and keeps what it had", () => {
    const queue = new BoundedQueue<string>(2);
    assert.equal(queue.push("a"), true);
    assert.equal(queue.push("b"), true);
    assert.equal(queue.push("c"), false);
    assert.deepEqual(queue.drain(), ["a", "b"]);
  });

  it("rejects a capacity below 1", () => {
    assert.throws(() => new BoundedQueue(0), /capacity/);
  });
});
