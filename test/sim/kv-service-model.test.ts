// The key-value service model: hand-built histories with a known verdict (stale reads, revisions
// going backwards, a version kept across a delete, wrong conflict revisions, late timed-out writes,
// keys that expire too early or come back after expiring), then random histories recorded from the
// product's own state machine (src/service/kv), TTLs included, which the model must accept whole,
// with answers dropped as timeouts, and must reject once one answer is changed to something the
// product never says.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyKv, getKv } from "../../src/service/kv/index.js";
import { MemoryState } from "../../src/service/state.js";
import { Prng } from "../../src/util/prng.js";
import { completed, type History, type Operation, timedOut } from "./history.js";
import { type ServiceKvInput, type ServiceKvOutput, serviceKvDialect } from "./kv-service-model.js";
import type { CheckResult } from "./linearizability.js";

type In = ServiceKvInput;
type Out = ServiceKvOutput;
type Op = Operation<In, Out>;

const op = (c: number, input: In, output: Out, call: number, ret: number) =>
  completed<In, Out>(c, input, output, call, ret);
const lost = (c: number, input: In, call: number) => timedOut<In, Out>(c, input, call);
const read = (value: string | null, version: number, revision: number): Out => ({
  kind: "value",
  value,
  version,
  revision,
});
const wrote = (revision: number, created: boolean): Out => ({ kind: "written", revision, created });

function check(history: History<In, Out>): CheckResult {
  return serviceKvDialect.check(history);
}

function assertRejected(history: History<In, Out>): void {
  const result = check(history);
  assert.equal(result.kind, "not-linearizable", JSON.stringify(result));
}

describe("service key-value model: known histories", () => {
  it("accepts answers with revisions that skip (other keys took the ones between)", () => {
    assert.equal(
      check([
        op(1, { op: "put", key: "x", value: "a" }, wrote(3, true), 0, 10),
        op(2, { op: "get", key: "x" }, read("a", 1, 3), 20, 30),
        op(
          1,
          { op: "put-if", key: "x", value: "b", condition: { kind: "revision", revision: 3 } },
          wrote(9, false),
          40,
          50,
        ),
        op(2, { op: "get", key: "x" }, read("b", 2, 9), 60, 70),
        op(1, { op: "delete", key: "x" }, { kind: "deleted", deleted: true, revision: 12 }, 80, 90),
        op(1, { op: "delete", key: "x" }, { kind: "deleted", deleted: false, revision: 15 }, 100, 110),
        op(2, { op: "incr", key: "x", by: 4 }, { kind: "incremented", value: "4", revision: 16 }, 120, 130),
        op(2, { op: "get", key: "x" }, read("4", 1, 16), 140, 150),
      ]).kind,
      "linearizable",
    );
  });

  it("rejects a stale read after a later write was acknowledged", () => {
    assertRejected([
      op(1, { op: "put", key: "x", value: "a" }, wrote(1, true), 0, 10),
      op(1, { op: "put", key: "x", value: "b" }, wrote(2, false), 20, 30),
      op(2, { op: "get", key: "x" }, read("a", 1, 1), 40, 50),
    ]);
  });

  it("rejects a write whose revision does not grow along the key", () => {
    assertRejected([
      op(1, { op: "put", key: "x", value: "a" }, wrote(5, true), 0, 10),
      op(1, { op: "put", key: "x", value: "b" }, wrote(4, false), 20, 30),
    ]);
  });

  it("rejects a put that claims to create a key that exists", () => {
    assertRejected([
      op(1, { op: "put", key: "x", value: "a" }, wrote(1, true), 0, 10),
      op(1, { op: "put", key: "x", value: "b" }, wrote(2, true), 20, 30),
    ]);
  });

  it("rejects a version kept across a delete", () => {
    assertRejected([
      op(1, { op: "put", key: "x", value: "a" }, wrote(1, true), 0, 10),
      op(1, { op: "delete", key: "x" }, { kind: "deleted", deleted: true, revision: 2 }, 20, 30),
      op(1, { op: "put", key: "x", value: "b" }, wrote(3, true), 40, 50),
      op(2, { op: "get", key: "x" }, read("b", 2, 3), 60, 70),
    ]);
  });

  it("rejects a conflict that names a revision the key never had", () => {
    const history = [
      op(1, { op: "put", key: "x", value: "a" }, wrote(4, true), 0, 10),
      op(
        2,
        { op: "put-if", key: "x", value: "b", condition: { kind: "revision", revision: 2 } },
        { kind: "conflict", currentRevision: 3 },
        20,
        30,
      ),
    ];
    assertRejected(history);
    const right = [
      history[0],
      op(2, history[1]?.input ?? { op: "get", key: "x" }, { kind: "conflict", currentRevision: 4 }, 20, 30),
    ];
    assert.equal(check(right.filter((o): o is Op => o !== undefined)).kind, "linearizable");
  });

  it("rejects an absent-only put that succeeds on a present key", () => {
    assertRejected([
      op(1, { op: "put", key: "x", value: "a" }, wrote(1, true), 0, 10),
      op(2, { op: "put-if", key: "x", value: "b", condition: { kind: "absent" } }, wrote(2, false), 20, 30),
    ]);
  });

  it("accepts a timed-out write whose revision a later read reveals, and rejects one read below it", () => {
    const history = [
      op(1, { op: "put", key: "x", value: "a" }, wrote(2, true), 0, 10),
      lost(1, { op: "put", key: "x", value: "b" }, 20),
      op(2, { op: "get", key: "x" }, read("b", 2, 7), 100, 110),
      op(
        2,
        { op: "put-if", key: "x", value: "c", condition: { kind: "revision", revision: 7 } },
        wrote(8, false),
        120,
        130,
      ),
    ];
    assert.equal(check(history).kind, "linearizable");
    assertRejected([
      op(1, { op: "put", key: "x", value: "a" }, wrote(2, true), 0, 10),
      lost(1, { op: "put", key: "x", value: "b" }, 20),
      op(2, { op: "get", key: "x" }, read("b", 2, 2), 100, 110),
    ]);
  });

  it("accepts a conditional put on a revision only a timed-out write could have produced", () => {
    // The client learned revision 5 from an answer the others never saw: the lost write made it.
    const history = [
      op(1, { op: "put", key: "x", value: "a" }, wrote(1, true), 0, 10),
      lost(1, { op: "put", key: "x", value: "b" }, 20),
      op(
        2,
        { op: "put-if", key: "x", value: "c", condition: { kind: "revision", revision: 5 } },
        wrote(6, false),
        100,
        110,
      ),
      op(2, { op: "get", key: "x" }, read("c", 3, 6), 120, 130),
    ];
    assert.equal(check(history).kind, "linearizable");
  });

  it("lets a key with a TTL read as absent once its deadline may have passed, and never before", () => {
    const put = op(1, { op: "put", key: "x", value: "a", ttlMs: 100 }, wrote(1, true), 0, 10);
    // The deadline is at least the call plus the TTL: absent from then on is right.
    assert.equal(
      check([put, op(2, { op: "get", key: "x" }, read(null, 0, 0), 150, 160)]).kind,
      "linearizable",
    );
    // The applied clock may lag the deadline (no later entry yet): still present is right too.
    assert.equal(
      check([put, op(2, { op: "get", key: "x" }, read("a", 1, 1), 150, 160)]).kind,
      "linearizable",
    );
    // Absent before the deadline could have come: a sweep that went early.
    assertRejected([put, op(2, { op: "get", key: "x" }, read(null, 0, 0), 50, 60)]);
    // Back after it was gone: expiry does not undo itself.
    assertRejected([
      put,
      op(2, { op: "get", key: "x" }, read(null, 0, 0), 150, 160),
      op(2, { op: "get", key: "x" }, read("a", 1, 1), 170, 180),
    ]);
  });

  it("clears a TTL on a plain put and keeps it on an increment", () => {
    const put = op(1, { op: "put", key: "x", value: "1", ttlMs: 100 }, wrote(1, true), 0, 10);
    assertRejected([
      put,
      op(1, { op: "put", key: "x", value: "2" }, wrote(2, false), 20, 30),
      op(2, { op: "get", key: "x" }, read(null, 0, 0), 300, 310),
    ]);
    assert.equal(
      check([
        put,
        op(1, { op: "incr", key: "x", by: 1 }, { kind: "incremented", value: "2", revision: 2 }, 20, 30),
        op(2, { op: "get", key: "x" }, read(null, 0, 0), 300, 310),
        // Created anew after the expiry.
        op(1, { op: "put", key: "x", value: "3" }, wrote(7, true), 320, 330),
      ]).kind,
      "linearizable",
    );
  });

  it("never accepts an error answer", () => {
    assertRejected([
      op(1, { op: "put", key: "x", value: "a" }, { kind: "error", code: "ERR_INTERNAL" }, 0, 10),
    ]);
  });
});

/** Runs random requests one after another against the product's state machine, recording answers. */
function recordFromProduct(seed: number, count: number): Op[] {
  const prng = new Prng(seed);
  const state = new MemoryState();
  const known = new Map<string, number>();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const ops: Op[] = [];
  const kinds = ["get", "put", "put-if", "delete", "incr"] as const;
  for (let i = 0; i < count; i++) {
    const key = prng.pick(["x", "y"]);
    // Mostly integers, so increments sometimes apply; unique text otherwise.
    const value = prng.chance(1, 2) ? String(prng.below(5)) : `v${i}`;
    const input = serviceKvDialect.input(prng, prng.pick(kinds), key, value, known.get(key));
    const k = encoder.encode(key);
    let output: Out;
    if (input.op === "get") {
      const record = getKv(state, k);
      output =
        record === undefined
          ? read(null, 0, 0)
          : read(decoder.decode(record.value), record.version, record.modRevision);
    } else {
      // The leader stamps a write inside its call and return (see below); TTLs count from there.
      const tsMs = i * 10 + 2;
      const result =
        input.op === "put"
          ? applyKv(
              state,
              {
                type: "put",
                key: k,
                value: encoder.encode(input.value),
                ...(input.ttlMs === undefined ? {} : { ttlMs: input.ttlMs }),
              },
              tsMs,
            )
          : input.op === "put-if"
            ? applyKv(
                state,
                input.condition.kind === "absent"
                  ? { type: "put", key: k, value: encoder.encode(input.value), ifAbsent: true }
                  : {
                      type: "put",
                      key: k,
                      value: encoder.encode(input.value),
                      ifRevision: input.condition.revision,
                    },
                tsMs,
              )
            : input.op === "delete"
              ? applyKv(
                  state,
                  {
                    type: "delete",
                    key: k,
                    ...(input.ifRevision === undefined ? {} : { ifRevision: input.ifRevision }),
                  },
                  tsMs,
                )
              : applyKv(state, { type: "increment", key: k, by: BigInt(input.by) }, tsMs);
      if (!result.ok) {
        output =
          result.code === "ERR_CONFLICT"
            ? { kind: "conflict", currentRevision: result.details.currentRevision ?? null }
            : { kind: "not-integer" };
      } else if (result.kind === "kv.put") output = wrote(result.revision, result.created);
      else if (result.kind === "kv.delete")
        output = { kind: "deleted", deleted: result.deleted, revision: result.revision };
      else if (result.kind === "kv.increment")
        output = { kind: "incremented", value: result.value, revision: result.revision };
      else throw new Error(`unexpected result ${JSON.stringify(result)}`);
    }
    const learned = serviceKvDialect.learned(output);
    if (learned !== undefined) known.set(key, learned);
    ops.push(op(1 + (i % 3), input, output, i * 10, i * 10 + 5));
  }
  return ops;
}

describe("service key-value model against the product's state machine", () => {
  it("accepts every sequential history the product produces, with some answers lost", () => {
    for (let seed = 1; seed <= 60; seed++) {
      const history = recordFromProduct(seed, 80);
      assert.equal(check(history).kind, "linearizable", `seed ${seed}`);
      const prng = new Prng(seed + 1000);
      const withTimeouts = history.map((o) => (prng.chance(1, 5) ? lost(o.clientId, o.input, o.callMs) : o));
      assert.equal(check(withTimeouts).kind, "linearizable", `seed ${seed} with timeouts`);
    }
  });

  it("rejects the product's history with one read turned stale", () => {
    let rejected = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const history = recordFromProduct(seed, 80);
      // The last read that saw a value the key had lost by then: make it report the previous value.
      const reads = history
        .map((o, i) => ({ o, i }))
        .filter(
          ({ o }) => o.input.op === "get" && o.outcome.kind === "ok" && o.outcome.output.kind === "value",
        );
      const target = reads.findLast(({ o, i }) => {
        const out = o.outcome.kind === "ok" ? o.outcome.output : undefined;
        return out?.kind === "value" && out.value !== null && i > 0;
      });
      if (target === undefined) continue;
      const earlier = history
        .slice(0, target.i)
        .findLast(
          (o) => o.input.key === target.o.input.key && o.input.op !== "get" && o.outcome.kind === "ok",
        );
      if (earlier === undefined) continue;
      const stale = history.slice();
      stale[target.i] = op(
        target.o.clientId,
        target.o.input,
        read(null, 0, 0),
        target.o.callMs,
        target.o.callMs + 5,
      );
      assert.equal(check(stale).kind, "not-linearizable", `seed ${seed}`);
      rejected++;
    }
    assert.ok(rejected > 30, `only ${rejected} histories had a read to spoil`);
  });
});
