// The apply notifier wakes only the waiters of the streams an applied batch touched (and those
// waiting for any change), never misses a batch applied between a read and a wait, and the state
// machine reports which streams each batch touched. Timers never fire here: waits end by wakeups.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Entry, logIndex, term } from "../../../src/raft/index.js";
import { ApplyNotifier, type WaitClock } from "../../../src/service/apply-notifier.js";
import { encodeEnvelope } from "../../../src/service/command.js";
import { MemoryBackend, ServiceStateMachine } from "../../../src/service/state-machine.js";
import { utf8 } from "../../../src/util/bytes.js";
import { config } from "./streams/helpers.js";

const frozen: WaitClock = { monotonicMs: () => 0, after: () => () => undefined };

/** Starts a wait and reports whether it has ended, after letting promise callbacks run. */
function track(wait: Promise<void>): () => Promise<boolean> {
  let done = false;
  void wait.then(() => {
    done = true;
  });
  return async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return done;
  };
}

describe("ApplyNotifier: waiters keyed by stream", () => {
  it("a batch wakes the waiters of the streams it touched, and those waiting for any change", async () => {
    const n = new ApplyNotifier(10, frozen);
    const onA = track(n.wait(n.version, 1000, undefined, ["a"]));
    const onBC = track(n.wait(n.version, 1000, undefined, ["b", "c"]));
    const onAny = track(n.wait(n.version, 1000));
    assert.equal(n.waiting, 3);
    n.notify(["c"]);
    assert.deepEqual([await onA(), await onBC(), await onAny()], [false, true, true]);
    assert.equal(n.waiting, 1, "a waiter woken by one of its streams leaves every stream's list");
    n.notify(new Set(["a"]));
    assert.equal(await onA(), true);
    assert.equal(n.waiting, 0);
  });

  it("a batch that does not say what it touched wakes everyone", async () => {
    const n = new ApplyNotifier(10, frozen);
    const onA = track(n.wait(n.version, 1000, undefined, ["a"]));
    n.notify();
    assert.equal(await onA(), true);
  });

  it("a wait from an older version ends at once, whatever it waits for", async () => {
    const n = new ApplyNotifier(10, frozen);
    const seen = n.version;
    n.notify(["b"]);
    assert.equal(await track(n.wait(seen, 1000, undefined, ["a"]))(), true);
  });
});

describe("ServiceStateMachine: streams touched by a batch", () => {
  it("names the streams whose bookkeeping or groups a batch changed", async () => {
    const touched: string[][] = [];
    const machine = new ServiceStateMachine(new MemoryBackend(), undefined, (streams) =>
      touched.push([...streams].sort()),
    );
    const entry = (index: number, command: Parameters<typeof encodeEnvelope>[0]["command"]): Entry => ({
      index: logIndex(index),
      term: term(1),
      kind: "normal",
      data: encodeEnvelope({ tsMs: 1000, command }),
    });
    await machine.apply([
      entry(1, { service: "streams", command: { type: "create", name: "a", config: config() } }),
      entry(2, { service: "streams", command: { type: "create", name: "b", config: config() } }),
    ]);
    await machine.apply([
      entry(3, { service: "kv", command: { type: "put", key: utf8("k"), value: utf8("v") } }),
      entry(4, {
        service: "streams",
        command: { type: "append", name: "b", payload: utf8("x"), headers: [] },
      }),
    ]);
    await machine.apply([entry(5, { service: "kv", command: { type: "delete", key: utf8("k") } })]);
    assert.deepEqual(touched, [["a", "b"], ["b"], []]);
  });
});
