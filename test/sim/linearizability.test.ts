// The linearizability checker on the key-value model: hand-built histories whose verdict is known
// (stale reads, lost writes, late-applied timeouts, phantom values, stale conditional puts), then
// property tests over histories generated from a sequential execution, with planted mutations.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { completed, type History, timedOut } from "./history.js";
import { generateKvHistory } from "./kv-history-gen.js";
import { type KvInput, type KvOperation, type KvOutput, kvModel } from "./kv-model.js";
import { type CheckResult, checkLinearizable, type Model } from "./linearizability.js";

const get = (c: number, key: string, value: string | null, version: number, call: number, ret: number) =>
  completed<KvInput, KvOutput>(c, { op: "get", key }, { kind: "value", value, version }, call, ret);
const put = (c: number, key: string, value: string, version: number, call: number, ret: number) =>
  completed<KvInput, KvOutput>(c, { op: "put", key, value }, { kind: "written", version }, call, ret);
const putLost = (c: number, key: string, value: string, call: number) =>
  timedOut<KvInput, KvOutput>(c, { op: "put", key, value }, call);

function check(history: History<KvInput, KvOutput>): CheckResult {
  return checkLinearizable(kvModel, history);
}

function assertNotLinearizable(result: CheckResult, stuckOpIndex?: number): void {
  assert.equal(result.kind, "not-linearizable", JSON.stringify(result));
  if (result.kind !== "not-linearizable") return;
  if (stuckOpIndex !== undefined) assert.equal(result.stuckOpIndex, stuckOpIndex, result.explanation);
}

describe("linearizability checker: known histories", () => {
  it("accepts an empty history and a sequential one", () => {
    assert.equal(check([]).kind, "linearizable");
    assert.equal(check([put(1, "x", "a", 1, 0, 10), get(2, "x", "a", 1, 20, 30)]).kind, "linearizable");
  });

  it("rejects a stale read after a leader change", () => {
    // The old leader still answers reads after a new leader acknowledged a later write.
    const result = check([
      put(1, "x", "1", 1, 0, 10),
      put(1, "x", "2", 2, 20, 30),
      get(2, "x", "1", 1, 40, 50),
    ]);
    assertNotLinearizable(result, 2);
  });

  it("rejects a lost write: acknowledged, later absent", () => {
    assertNotLinearizable(check([put(1, "x", "a", 1, 0, 10), get(2, "x", null, 0, 20, 30)]), 1);
  });

  it("accepts a timed-out write that took effect late", () => {
    const history = [putLost(1, "x", "a", 0), get(2, "x", null, 0, 10, 20), get(2, "x", "a", 1, 30, 40)];
    assert.equal(check(history).kind, "linearizable");
  });

  it("accepts a timed-out write that never took effect", () => {
    const history = [putLost(1, "x", "a", 0), get(2, "x", null, 0, 10, 20), get(2, "x", null, 0, 100, 110)];
    assert.equal(check(history).kind, "linearizable");
  });

  it("rejects a timed-out write observed before it was called", () => {
    assertNotLinearizable(check([get(2, "x", "a", 1, 0, 5), putLost(1, "x", "a", 10)]), 0);
  });

  it("accepts concurrent writes ordered either way, and rejects an order the reads contradict", () => {
    // b then a
    assert.equal(
      check([put(1, "x", "a", 2, 0, 100), put(2, "x", "b", 1, 10, 90), get(3, "x", "a", 2, 110, 120)]).kind,
      "linearizable",
    );
    // a then b
    assert.equal(
      check([put(1, "x", "a", 1, 0, 100), put(2, "x", "b", 2, 10, 90), get(3, "x", "b", 2, 110, 120)]).kind,
      "linearizable",
    );
    // The versions say a went first, the read says b is older.
    assertNotLinearizable(
      check([put(1, "x", "a", 1, 0, 100), put(2, "x", "b", 2, 10, 90), get(3, "x", "a", 2, 110, 120)]),
    );
  });

  it("treats operations touching at the same millisecond as concurrent", () => {
    // The read returns at 10 and the write is called at 10: either order is possible.
    assert.equal(check([get(1, "x", "a", 1, 0, 10), put(2, "x", "a", 1, 10, 20)]).kind, "linearizable");
    assertNotLinearizable(check([get(1, "x", "a", 1, 0, 9), put(2, "x", "a", 1, 10, 20)]));
  });

  it("rejects a read of a value that was never written", () => {
    assertNotLinearizable(check([put(1, "x", "a", 1, 0, 10), get(2, "x", "zzz", 1, 5, 30)]), 1);
  });

  it("rejects reads that see a write and then, later, not see it", () => {
    const history = [
      put(1, "x", "new", 1, 0, 100),
      get(2, "x", "new", 1, 10, 20),
      get(3, "x", null, 0, 30, 40), // begins after the first read ended
    ];
    assertNotLinearizable(check(history));
  });

  it("rejects a conditional put that succeeded on a stale version", () => {
    const stale = completed<KvInput, KvOutput>(
      3,
      { op: "put-if", key: "x", value: "c", condition: { kind: "version", version: 1 } },
      { kind: "written", version: 3 },
      40,
      50,
    );
    assertNotLinearizable(check([put(1, "x", "a", 1, 0, 10), put(2, "x", "b", 2, 20, 30), stale]), 2);
    // The same conditional put concurrent with the second write may go before it.
    const early = completed<KvInput, KvOutput>(
      3,
      { op: "put-if", key: "x", value: "c", condition: { kind: "version", version: 1 } },
      { kind: "written", version: 2 },
      15,
      50,
    );
    assert.equal(
      check([put(1, "x", "a", 1, 0, 10), put(2, "x", "b", 3, 20, 30), early]).kind,
      "linearizable",
    );
  });

  it("checks if-absent, delete and increment semantics", () => {
    const ifAbsent = (c: number, out: KvOutput, call: number, ret: number) =>
      completed<KvInput, KvOutput>(
        c,
        { op: "put-if", key: "x", value: "v", condition: { kind: "absent" } },
        out,
        call,
        ret,
      );
    const del = (c: number, deleted: boolean, call: number, ret: number) =>
      completed<KvInput, KvOutput>(c, { op: "delete", key: "x" }, { kind: "deleted", deleted }, call, ret);
    const incr = (c: number, value: number, version: number, call: number, ret: number) =>
      completed<KvInput, KvOutput>(
        c,
        { op: "incr", key: "x", by: 2 },
        { kind: "incremented", value, version },
        call,
        ret,
      );
    // Two concurrent if-absent puts: exactly one may win.
    assert.equal(
      check([ifAbsent(1, { kind: "written", version: 1 }, 0, 10), ifAbsent(2, { kind: "rejected" }, 0, 10)])
        .kind,
      "linearizable",
    );
    assertNotLinearizable(
      check([
        ifAbsent(1, { kind: "written", version: 1 }, 0, 10),
        ifAbsent(2, { kind: "written", version: 2 }, 0, 10),
      ]),
    );
    // Delete bumps the version; increment counts from zero on an absent key.
    assert.equal(
      check([
        ifAbsent(1, { kind: "written", version: 1 }, 0, 10),
        del(1, true, 20, 30),
        get(1, "x", null, 2, 40, 50),
        incr(1, 2, 3, 60, 70),
        get(1, "x", "2", 3, 80, 90),
        completed<KvInput, KvOutput>(
          1,
          { op: "incr", key: "y", by: 1 },
          { kind: "incremented", value: 1, version: 1 },
          0,
          1,
        ),
      ]).kind,
      "linearizable",
    );
    assertNotLinearizable(check([del(1, true, 0, 10)]));
    assertNotLinearizable(check([put(1, "x", "abc", 1, 0, 10), incr(1, 2, 2, 20, 30)]));
    assert.equal(
      check([
        put(1, "x", "abc", 1, 0, 10),
        completed<KvInput, KvOutput>(1, { op: "incr", key: "x", by: 1 }, { kind: "not-integer" }, 20, 30),
      ]).kind,
      "linearizable",
    );
  });

  it("checks keys independently and names the key part and operation that failed", () => {
    const history = [
      put(1, "a", "1", 1, 0, 10),
      get(2, "a", "1", 1, 20, 30),
      put(1, "b", "1", 1, 0, 10),
      put(1, "b", "2", 2, 20, 30),
      get(2, "b", "1", 1, 40, 50),
    ];
    const result = check(history);
    assertNotLinearizable(result, 4);
    if (result.kind !== "not-linearizable") return;
    assert.equal(result.partIndex, 1);
    assert.equal(result.partName, 'key "b"');
    assert.match(result.explanation, /^not linearizable: key "b" \(3 operations\)/);
    assert.deepEqual(
      result.longestPrefix.map((s) => s.opIndex),
      [2, 3],
    );
    assert.equal(result.stateAfterPrefix, '"2"@v2');
    assert.match(result.explanation, /longest linearizable prefix: 2 operation/);
    assert.match(
      result.explanation,
      /could not place before it returned: #4 client 2 \[40, 50\] get\(b\) -> "1"@v1/,
    );
    assert.match(result.explanation, /impossible in state "2"@v2/);
  });

  it("returns unknown instead of searching past its step budget", () => {
    // Many concurrent writes and an impossible read: the search must try many orders.
    const history: KvOperation[] = [];
    for (let i = 0; i < 12; i++) history.push(put(i, "x", `v${i}`, 12 - i, 0, 100));
    history.push(get(99, "x", "never", 13, 200, 210));
    const result = checkLinearizable(kvModel, history, { stepsMax: 50 });
    assert.equal(result.kind, "unknown");
    assert.equal(check(history).kind, "not-linearizable");
  });

  it("returns unknown when the memo reaches its entry limit", () => {
    const history: KvOperation[] = [];
    for (let i = 0; i < 8; i++) history.push(put(i, "x", `v${i}`, 8 - i, 0, 100));
    history.push(get(99, "x", "never", 9, 200, 210));
    const result = checkLinearizable(kvModel, history, { cacheEntriesMax: 5 });
    assert.equal(result.kind, "unknown");
    if (result.kind === "unknown") assert.match(result.reason, /memo limit of 5/);
  });

  it("stays cheap with many timed-out writes, whether or not they took effect", () => {
    // 60 timed-out writes early on (half of them took effect, as later reads and versions show),
    // then 300 sequential operations: plain Wing & Gong would try subsets of the 60.
    const history: KvOperation[] = [];
    let version = 0;
    for (let i = 0; i < 60; i++) history.push(putLost(i, "x", `lost-${i}`, i));
    for (let i = 0; i < 60; i += 2) {
      version++;
      history.push(get(100, "x", `lost-${i}`, version, 1000 + i * 10, 1000 + i * 10 + 1));
    }
    for (let i = 0; i < 300; i++) {
      const t = 2000 + i * 10;
      version++;
      history.push(put(101, "x", `v${i}`, version, t, t + 5));
    }
    const result = check(history);
    assert.equal(result.kind, "linearizable");
    // A deterministic work bound, not a timing: the search must not explore subsets.
    assert.ok(result.steps < 50_000, `${result.steps} steps`);
  });

  it("rejects a malformed history", () => {
    assert.throws(() => check([put(1, "x", "a", 1, 10, 5)]), /before its call/);
  });

  it("works for any model: a register without partitions", () => {
    const register: Model<number, { w?: number }, number> = {
      init: () => 0,
      step: (s, input, output) =>
        input.w === undefined
          ? { ok: output === undefined || output === s, newState: s }
          : { ok: true, newState: input.w },
      stateKey: (s) => String(s),
      describeOperation: (input, output) =>
        input.w === undefined ? `read -> ${output}` : `write ${input.w}`,
      describeState: (s) => String(s),
    };
    assert.equal(
      checkLinearizable(register, [completed(1, { w: 1 }, 0, 0, 5), completed(2, {}, 1, 6, 7)]).kind,
      "linearizable",
    );
    assert.equal(
      checkLinearizable(register, [completed(1, { w: 1 }, 0, 0, 5), completed(2, {}, 0, 6, 7)]).kind,
      "not-linearizable",
    );
  });
});

describe("linearizability checker: generated histories", () => {
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  it("accepts every history generated from a sequential execution", () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const { history } = generateKvHistory(seed, {
          operations: 80,
          clients: 4,
          keys: 2,
          timeoutChance: [1, 10],
        });
        const result = check(history);
        assert.equal(
          result.kind,
          "linearizable",
          result.kind === "not-linearizable" ? result.explanation : "",
        );
      }),
      { numRuns: 60 },
    );
  });

  it("is a pure function of the seed", () => {
    const options = { operations: 50, clients: 3, keys: 2, timeoutChance: [1, 8] as const };
    assert.deepEqual(generateKvHistory(7, options), generateKvHistory(7, options));
    assert.notDeepEqual(generateKvHistory(7, options).history, generateKvHistory(8, options).history);
  });

  it("rejects the same histories with a read changed to a value never written", () => {
    fc.assert(
      fc.property(seedArb, fc.nat(), (seed, pick) => {
        const { history } = generateKvHistory(seed, {
          operations: 60,
          clients: 4,
          keys: 2,
          timeoutChance: [1, 10],
        });
        const reads = history.flatMap((op, i) =>
          op.input.op === "get" && op.outcome.kind === "ok" ? [{ op, i }] : [],
        );
        fc.pre(reads.length > 0);
        const target = reads[pick % reads.length];
        if (target === undefined || target.op.outcome.kind !== "ok") return;
        const mutated = history.slice();
        mutated[target.i] = {
          ...target.op,
          outcome: { ...target.op.outcome, output: { kind: "value", value: "never-written", version: 1 } },
        };
        const result = check(mutated);
        assertNotLinearizable(result);
      }),
      { numRuns: 40 },
    );
  });

  it("rejects the same histories with a write acknowledged at a version no order reaches", () => {
    fc.assert(
      fc.property(seedArb, fc.nat(), (seed, pick) => {
        const { history } = generateKvHistory(seed, {
          operations: 60,
          clients: 4,
          keys: 2,
          timeoutChance: [1, 10],
        });
        const writes = history.flatMap((op, i) =>
          op.input.op === "put" && op.outcome.kind === "ok" ? [{ op, i }] : [],
        );
        fc.pre(writes.length > 0);
        const target = writes[pick % writes.length];
        if (target === undefined || target.op.outcome.kind !== "ok") return;
        const mutated = history.slice();
        // More versions than there are operations on the key: no ordering can produce it.
        mutated[target.i] = {
          ...target.op,
          outcome: { ...target.op.outcome, output: { kind: "written", version: history.length + 1 } },
        };
        // The report names the first operation that returned unplaced, not necessarily the mutated one.
        assertNotLinearizable(check(mutated));
      }),
      { numRuns: 40 },
    );
  });

  it("rejects a generated history with one read moved to see the value before the last write", () => {
    // Constructed: a read that starts after a write returned but reports the state from before it.
    const { history } = generateKvHistory(42, { operations: 40, clients: 1, keys: 1 });
    const lastPut = history.findLastIndex((op) => op.input.op === "put");
    const putOp = history[lastPut];
    assert.ok(putOp && putOp.outcome.kind === "ok" && putOp.outcome.output.kind === "written");
    const version = putOp.outcome.output.version;
    const stale = get(
      9,
      putOp.input.key,
      "previous-value",
      version - 1,
      putOp.outcome.returnMs + 1,
      putOp.outcome.returnMs + 2,
    );
    assertNotLinearizable(check([...history, stale]), history.length);
  });

  it("checks a 2,000-operation, 5-client, 3-key history", () => {
    const { history } = generateKvHistory(2024, {
      operations: 2000,
      clients: 5,
      keys: 3,
      timeoutChance: [1, 50],
    });
    assert.equal(history.length, 2000);
    assert.equal(check(history).kind, "linearizable");
  });
});
