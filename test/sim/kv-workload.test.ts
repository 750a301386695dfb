// The KV workload against toy targets on the simulated clock: a correct store (with lost requests,
// lost replies and definite failures) yields linearizable histories; stores with planted bugs (stale
// replica reads, dropped acknowledged writes) yield histories the checker rejects; and the workload
// is a pure function of its seed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../src/util/prng.js";
import { applyKv, type KvKeyState, type KvOutput, kvModel } from "./kv-model.js";
import { type KvTarget, KvWorkload, type KvWorkloadOptions, kvVersionDialect } from "./kv-workload.js";
import { checkLinearizable } from "./linearizability.js";
import { Scheduler } from "./scheduler.js";

const options: KvWorkloadOptions = {
  clients: 5,
  keys: 3,
  operationsMax: 400,
  mix: { get: 4, put: 3, putIf: 2, delete: 1, incr: 1 },
  opTimeoutMs: 100,
  thinkMinMs: 0,
  thinkMaxMs: 20,
  retryBackoffMs: 10,
  retriesMax: 2,
  idempotentRetries: false,
};

type Bug = "none" | "stale-replica-reads" | "drop-acked-writes";

/**
 * A single-copy store with random latency. It sometimes loses a request, loses a reply, or fails
 * definitely before doing anything. With a planted bug it misbehaves in one specific way.
 */
function toyStore(scheduler: Scheduler, prng: Prng, bug: Bug): KvTarget {
  const primary = new Map<string, KvKeyState>();
  const replica = new Map<string, KvKeyState>();
  const stateOf = (m: Map<string, KvKeyState>, key: string) => m.get(key) ?? { value: null, version: 0 };
  // Results by request id: a retry with the same id gets the original answer, never a second effect.
  const answered = new Map<string, KvOutput>();
  return {
    submit(_clientId, input, done, requestId) {
      const roll = prng.below(100);
      if (roll < 3) return; // request lost: never applied, never answered
      if (roll < 6) {
        scheduler.after(prng.range(1, 10), () => done({ kind: "failed", reason: "not-leader" }));
        return;
      }
      const replyLost = roll < 9;
      scheduler.after(prng.range(1, 40), () => {
        const earlier = answered.get(requestId);
        if (earlier !== undefined) {
          if (!replyLost) scheduler.after(prng.range(1, 40), () => done({ kind: "ok", output: earlier }));
          return;
        }
        let { newState, output } = applyKv(stateOf(primary, input.key), input);
        if (bug === "stale-replica-reads" && input.op === "get") {
          output = applyKv(stateOf(replica, input.key), input).output;
        }
        if (bug === "drop-acked-writes" && input.op !== "get" && prng.chance(1, 10))
          newState = stateOf(primary, input.key);
        primary.set(input.key, newState);
        answered.set(requestId, output);
        // The replica catches up 200 ms later.
        scheduler.after(200, () => replica.set(input.key, newState));
        if (!replyLost) scheduler.after(prng.range(1, 40), () => done({ kind: "ok", output }));
      });
    },
  };
}

function run(seed: number, bug: Bug, opts: KvWorkloadOptions = options) {
  const scheduler = new Scheduler();
  const prng = new Prng(seed);
  const workload = new KvWorkload(
    scheduler,
    prng.fork(),
    toyStore(scheduler, prng.fork(), bug),
    opts,
    kvVersionDialect,
  );
  workload.start();
  scheduler.runUntil(() => workload.done, 1_000_000);
  return { workload, history: workload.history(), scheduler };
}

describe("KvWorkload", () => {
  it("records linearizable histories against a correct store, with timeouts, retries and failures", () => {
    for (const seed of [1, 2, 3]) {
      const { workload, history } = run(seed, "none");
      assert.ok(workload.done);
      assert.equal(workload.counters.issued, options.operationsMax);
      assert.ok(workload.counters.timedOut > 0 && workload.counters.failed > 0 && workload.counters.ok > 0);
      assert.equal(history.length, options.operationsMax - workload.counters.failed);
      assert.ok(history.some((op) => op.outcome.kind === "unknown"));
      const ops = new Set(history.map((op) => op.input.op));
      assert.deepEqual([...ops].sort(), ["delete", "get", "incr", "put", "put-if"]);
      const result = checkLinearizable(kvModel, history);
      assert.equal(result.kind, "linearizable", result.kind === "not-linearizable" ? result.explanation : "");
    }
  });

  it("records one operation per idempotent retry chain, and stays linearizable", () => {
    const idempotent = { ...options, idempotentRetries: true };
    for (const seed of [1, 2]) {
      const { workload, history } = run(seed, "none", idempotent);
      assert.ok(workload.counters.timedOut > 0);
      assert.ok(history.length < workload.counters.issued - workload.counters.failed);
      assert.equal(workload.counters.idempotencyViolations, 0);
      const result = checkLinearizable(kvModel, history);
      assert.equal(result.kind, "linearizable", result.kind === "not-linearizable" ? result.explanation : "");
    }
  });

  it("exposes a system that applies a retried request twice despite its idempotency key", () => {
    const scheduler = new Scheduler();
    let state: KvKeyState = { value: null, version: 0 };
    const seen = new Set<string>();
    // Applies every attempt; answers only retries.
    const forgetful: KvTarget = {
      submit: (_c, input, done, requestId) => {
        const { newState, output } = applyKv(state, input);
        state = newState;
        if (seen.has(requestId)) scheduler.after(5, () => done({ kind: "ok", output }));
        seen.add(requestId);
      },
    };
    const workload = new KvWorkload(
      scheduler,
      new Prng(2),
      forgetful,
      {
        ...options,
        clients: 1,
        operationsMax: 4,
        retriesMax: 1,
        idempotentRetries: true,
        mix: { get: 0, put: 1, putIf: 0, delete: 0, incr: 0 },
      },
      kvVersionDialect,
    );
    workload.start();
    scheduler.runAll();
    const history = workload.history();
    assert.equal(history.length, 2);
    assert.ok(history.every((op) => op.outcome.kind === "ok"));
    assert.equal(checkLinearizable(kvModel, history).kind, "not-linearizable");
  });

  it("counts retries of one operation answered differently", () => {
    const scheduler = new Scheduler();
    let n = 0;
    // Answers the first attempt after the timeout and the retry at once, with different versions.
    const inconsistent: KvTarget = {
      submit: (_c, _input, done) => {
        n++;
        const version = n;
        scheduler.after(version === 1 ? 150 : 1, () =>
          done({ kind: "ok", output: { kind: "written", version } }),
        );
      },
    };
    const workload = new KvWorkload(
      scheduler,
      new Prng(2),
      inconsistent,
      {
        ...options,
        clients: 1,
        operationsMax: 2,
        retriesMax: 1,
        idempotentRetries: true,
        mix: { get: 0, put: 1, putIf: 0, delete: 0, incr: 0 },
      },
      kvVersionDialect,
    );
    workload.start();
    scheduler.runAll();
    assert.equal(workload.counters.idempotencyViolations, 1);
  });

  it("yields a history the checker rejects when the store serves reads from a lagging replica", () => {
    const { history } = run(1, "stale-replica-reads");
    const result = checkLinearizable(kvModel, history);
    assert.equal(result.kind, "not-linearizable");
  });

  it("yields a history the checker rejects when the store drops acknowledged writes", () => {
    const { history } = run(1, "drop-acked-writes");
    assert.equal(checkLinearizable(kvModel, history).kind, "not-linearizable");
  });

  it("retries a timed-out operation with the same request, then moves on", () => {
    const scheduler = new Scheduler();
    const silent: KvTarget = { submit: () => {} };
    // Puts only: each logical write carries a unique value, so attempts of different operations differ.
    const workload = new KvWorkload(
      scheduler,
      new Prng(5),
      silent,
      {
        ...options,
        clients: 1,
        operationsMax: 6,
        mix: { get: 0, put: 1, putIf: 0, delete: 0, incr: 0 },
      },
      kvVersionDialect,
    );
    workload.start();
    scheduler.runUntil(() => workload.done, 100_000);
    const history = workload.history();
    assert.equal(history.length, 6);
    assert.ok(history.every((op) => op.outcome.kind === "unknown"));
    // Attempts 0-2 are one logical operation (two retries), 3-5 the next.
    assert.deepEqual(history[0]?.input, history[2]?.input);
    assert.deepEqual(history[3]?.input, history[5]?.input);
    assert.notDeepEqual(history[0]?.input, history[3]?.input);
    assert.equal(workload.counters.timedOut, 6);
  });

  it("records a late answer with its real return time", () => {
    const scheduler = new Scheduler();
    const slow: KvTarget = {
      submit: (_c, input, done) =>
        scheduler.after(150, () =>
          done({ kind: "ok", output: applyKv({ value: null, version: 0 }, input).output }),
        ),
    };
    const workload = new KvWorkload(
      scheduler,
      new Prng(5),
      slow,
      {
        ...options,
        clients: 1,
        operationsMax: 1,
      },
      kvVersionDialect,
    );
    workload.start();
    scheduler.runAll();
    const [op] = workload.history();
    assert.ok(op && op.outcome.kind === "ok");
    assert.equal(op.outcome.returnMs - op.callMs, 150);
    assert.equal(workload.counters.lateReplies, 1);
  });

  it("records a reported lost answer as unknown and retries before the timeout", () => {
    const scheduler = new Scheduler();
    const calls: number[] = [];
    const lossy: KvTarget = {
      submit: (_c, _input, done) => {
        calls.push(scheduler.nowMs);
        scheduler.after(5, () => done({ kind: "unknown", reason: "connection reset" }));
      },
    };
    const workload = new KvWorkload(
      scheduler,
      new Prng(9),
      lossy,
      {
        ...options,
        clients: 1,
        operationsMax: 3,
        mix: { get: 0, put: 1, putIf: 0, delete: 0, incr: 0 },
        idempotentRetries: true,
      },
      kvVersionDialect,
    );
    workload.start();
    scheduler.runAll();
    // One logical put, attempted three times (two retries), each retried after the backoff alone.
    const history = workload.history();
    assert.equal(history.length, 1);
    assert.equal(history[0]?.outcome.kind, "unknown");
    assert.equal(workload.counters.lost, 3);
    assert.equal(workload.counters.timedOut, 0);
    assert.deepEqual(
      calls.slice(1).map((at, i) => at - (calls[i] ?? 0)),
      [5 + options.retryBackoffMs, 5 + options.retryBackoffMs],
    );
  });

  it("stops issuing after stop()", () => {
    const scheduler = new Scheduler();
    const prng = new Prng(3);
    const workload = new KvWorkload(
      scheduler,
      prng.fork(),
      toyStore(scheduler, prng.fork(), "none"),
      options,
      kvVersionDialect,
    );
    workload.start();
    scheduler.runUntil(200);
    workload.stop();
    const issued = workload.counters.issued;
    scheduler.runAll();
    assert.equal(workload.counters.issued, issued);
    assert.ok(workload.done);
    assert.ok(issued < options.operationsMax);
  });

  it("refuses a target that answers one operation twice", () => {
    const scheduler = new Scheduler();
    const twice: KvTarget = {
      submit: (_c, _input, done) => {
        done({ kind: "failed", reason: "x" });
        done({ kind: "failed", reason: "x" });
      },
    };
    const workload = new KvWorkload(scheduler, new Prng(1), twice, options, kvVersionDialect);
    workload.start();
    assert.throws(() => scheduler.runAll(), /answered one operation twice/);
  });

  it("is a pure function of its seed", () => {
    assert.deepEqual(run(11, "none").history, run(11, "none").history);
    assert.notDeepEqual(run(11, "none").history, run(12, "none").history);
  });
});
