// Cross-checks the linearizability checker against a brute-force reference on small random
// histories with random (often impossible) outputs: the reference tries every order that respects
// real time, with no event list and no memo, so both verdicts occur and must agree.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Operation } from "./history.js";
import {
  applyKv,
  type KvInput,
  type KvKeyState,
  type KvOperation,
  type KvOutput,
  kvModel,
} from "./kv-model.js";
import { checkLinearizable } from "./linearizability.js";

/** Whether some order of the operations respects real time and the model accepts every output. */
function bruteForce(history: readonly KvOperation[]): boolean {
  const n = history.length;
  const mustPrecede = (a: KvOperation, b: KvOperation) =>
    a.outcome.kind === "ok" && a.outcome.returnMs < b.callMs;
  const placed = new Array<boolean>(n).fill(false);
  const search = (state: KvKeyState, count: number): boolean => {
    if (history.every((op, i) => placed[i] || op.outcome.kind === "unknown")) return true;
    for (let i = 0; i < n; i++) {
      const op = history[i];
      if (op === undefined || placed[i]) continue;
      if (history.some((other, j) => !placed[j] && j !== i && mustPrecede(other, op))) continue;
      const output = op.outcome.kind === "ok" ? op.outcome.output : undefined;
      const { ok, newState } = kvModel.step(state, op.input, output);
      if (!ok) continue;
      placed[i] = true;
      const found = search(newState, count + 1);
      placed[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(kvModel.init(), 0);
}

const valueArb = fc.constantFrom("a", "b");
const versionArb = fc.integer({ min: 0, max: 3 });
const inputArb: fc.Arbitrary<KvInput> = fc.oneof(
  fc.constant<KvInput>({ op: "get", key: "k" }),
  valueArb.map<KvInput>((value) => ({ op: "put", key: "k", value })),
  fc.tuple(valueArb, fc.option(versionArb, { nil: undefined })).map<KvInput>(([value, version]) => ({
    op: "put-if",
    key: "k",
    value,
    condition: version === undefined ? { kind: "absent" } : { kind: "version", version },
  })),
  fc.constant<KvInput>({ op: "delete", key: "k" }),
  fc.constant<KvInput>({ op: "incr", key: "k", by: 1 }),
);
const outputArb: fc.Arbitrary<KvOutput> = fc.oneof(
  fc.record({
    kind: fc.constant("value" as const),
    value: fc.constantFrom<string | null>("a", "b", "1", null),
    version: versionArb,
  }),
  fc.record({ kind: fc.constant("written" as const), version: versionArb }),
  fc.constant<KvOutput>({ kind: "rejected" }),
  fc.record({ kind: fc.constant("deleted" as const), deleted: fc.boolean() }),
  fc.record({
    kind: fc.constant("incremented" as const),
    value: fc.integer({ min: 1, max: 3 }),
    version: versionArb,
  }),
  fc.constant<KvOutput>({ kind: "not-integer" }),
);
/**
 * Random operations whose outputs mostly come from running them in array order on the model (so many
 * histories are linearizable) and sometimes are random (so many are not); intervals are random.
 */
const historyArb: fc.Arbitrary<KvOperation[]> = fc
  .array(
    fc.tuple(
      fc.nat(3),
      inputArb,
      fc.option(outputArb, { freq: 3, nil: undefined }),
      fc.nat(20),
      fc.nat(10),
      fc.nat(5),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((rows) => {
    let state = kvModel.init();
    return rows.map(
      ([clientId, input, randomOutput, callMs, length, unknownRoll]): Operation<KvInput, KvOutput> => {
        const { newState, output } = applyKv(state, input);
        state = newState;
        if (unknownRoll === 0) return { clientId, input, callMs, outcome: { kind: "unknown" } };
        return {
          clientId,
          input,
          callMs,
          outcome: { kind: "ok", output: randomOutput ?? output, returnMs: callMs + length },
        };
      },
    );
  });

describe("linearizability checker against brute force", () => {
  it("agrees on random small histories", () => {
    let linearizable = 0;
    let not = 0;
    fc.assert(
      fc.property(historyArb, (history) => {
        const expected = bruteForce(history);
        const got = checkLinearizable(kvModel, history);
        assert.equal(got.kind, expected ? "linearizable" : "not-linearizable");
        if (expected) linearizable++;
        else not++;
      }),
      { numRuns: 1500 },
    );
    // Both verdicts were exercised, so agreement means something.
    assert.ok(linearizable > 100 && not > 100, `${linearizable} linearizable, ${not} not`);
  });
});
