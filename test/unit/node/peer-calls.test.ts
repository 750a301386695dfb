// Calls between nodes over the in-memory transport under the simulator's clock: a follower's call
// is answered by the peer's handler, and each way a call can fail says whether anything was done
// (ERR_UNAVAILABLE: never left this node, or refused) or the outcome is unknown (ERR_TIMEOUT).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setImmediate as turn } from "node:timers/promises";
import type { Env } from "../../../src/node/env.js";
import { NodeError } from "../../../src/node/node-error.js";
import { NodeHost } from "../../../src/node/node-host.js";
import {
  decodeNodeWire,
  encodeNodeWire,
  type NodeWireMessage,
  nodeWireCodec,
} from "../../../src/node/node-wire.js";
import { groupId, logIndex, type NodeId, nodeId, term } from "../../../src/raft/index.js";
import { MemoryNetwork, noFaults } from "../../../src/transport/memory-transport.js";
import { Prng } from "../../../src/util/prng.js";
import { Scheduler } from "../../sim/scheduler.js";

const text = (s: string) => new TextEncoder().encode(s);
const read = (b: Uint8Array) => new TextDecoder().decode(b);

function pair(seed = 1) {
  const scheduler = new Scheduler();
  const prng = new Prng(seed);
  const env: Env = {
    nowMs: () => scheduler.nowMs,
    monotonicMs: () => scheduler.nowMs,
    after(delayMs, run) {
      const id = scheduler.after(delayMs, run);
      return () => void scheduler.cancel(id);
    },
    defer(run) {
      scheduler.after(0, run);
    },
    random: prng,
  };
  const network = new MemoryNetwork<NodeWireMessage>({
    env: {
      nowMs: () => scheduler.nowMs,
      setTimer(delayMs, run) {
        const id = scheduler.after(delayMs, run);
        return { cancel: () => void scheduler.cancel(id) };
      },
      below: (bound) => prng.below(bound),
    },
    codec: { encode: (m) => encodeNodeWire(m), decode: decodeNodeWire, groupOf: nodeWireCodec.groupOf },
  });
  const transports = [1, 2].map((id) => {
    const transport = network.transport(nodeId(id));
    const other = nodeId(3 - id);
    transport.setPeers(new Map([[other, { host: "memory", port: other }]]));
    return transport;
  });
  const host = (id: number) =>
    new NodeHost({
      self: { id: nodeId(id), name: `n${id}`, httpUrl: `http://n${id}` },
      transport: transports[id - 1] ?? assert.fail("no transport"),
      env,
    });
  const follower = host(1);
  const leader = host(2);
  /** Runs simulated events, letting promises settle between them, until `done` holds. */
  const until = async (done: () => boolean): Promise<void> => {
    for (let i = 0; i < 10_000 && !done(); i++) {
      await turn();
      if (!done() && !scheduler.step()) await turn();
    }
    assert.ok(done(), "the awaited condition never held");
  };
  return { scheduler, network, transports, follower, leader, until };
}

/** Settles `promise` into a value the test can inspect synchronously. */
function track<T>(promise: Promise<T>): { value: T | undefined; error: unknown; settled: () => boolean } {
  const box: { value?: T; error?: unknown; done: boolean } = { done: false };
  promise.then(
    (value) => Object.assign(box, { value, done: true }),
    (error: unknown) => Object.assign(box, { error, done: true }),
  );
  return {
    get value() {
      return box.value;
    },
    get error() {
      return box.error;
    },
    settled: () => box.done,
  };
}

function codeOf(error: unknown): string {
  assert.ok(error instanceof NodeError, `expected a NodeError, got ${String(error)}`);
  return error.code;
}

describe("calls between nodes", () => {
  it("answers a call with the peer handler's answer, naming the caller", async () => {
    const { follower, leader, until } = pair();
    const seen: NodeId[] = [];
    leader.onCall(async (from, body) => {
      seen.push(from);
      return text(`done: ${read(body)}`);
    });
    const call = track(follower.call(nodeId(2), text("put x"), 1_000));
    await until(call.settled);
    assert.equal(read(call.value ?? new Uint8Array()), "done: put x");
    assert.deepEqual(seen, [1]);
  });

  it("runs a call once when the network delivers it twice, and answers with that run", async () => {
    const { network, follower, leader, until } = pair();
    network.setLinkFaults(nodeId(1), nodeId(2), { ...noFaults, duplicate: { numerator: 1, denominator: 1 } });
    let runs = 0;
    leader.onCall(async () => text(`run ${++runs}`));
    const call = track(follower.call(nodeId(2), text("ack 6"), 1_000));
    await until(call.settled);
    const second = track(follower.call(nodeId(2), text("ack 7"), 1_000));
    await until(second.settled);
    assert.equal(read(call.value ?? new Uint8Array()), "run 1");
    assert.equal(read(second.value ?? new Uint8Array()), "run 2");
    assert.equal(runs, 2, "each call ran once although each arrived twice");
  });

  it("refuses a call that cannot leave (no connection) without running the handler", async () => {
    const { follower, leader, network } = pair();
    let ran = false;
    leader.onCall(async () => {
      ran = true;
      return new Uint8Array();
    });
    network.cut(nodeId(1), nodeId(2));
    await assert.rejects(
      follower.call(nodeId(2), text("put x"), 1_000),
      (e) => codeOf(e) === "ERR_UNAVAILABLE",
    );
    assert.equal(ran, false);
  });

  it("reports an unknown outcome when the handler ran but the reply never came", async () => {
    const { follower, leader, network, until } = pair();
    let ran = false;
    leader.onCall(async () => {
      ran = true;
      network.cut(nodeId(2), nodeId(1)); // The way back breaks after the work was done.
      return text("done");
    });
    const call = track(follower.call(nodeId(2), text("put x"), 1_000));
    await until(call.settled);
    assert.equal(ran, true);
    assert.equal(codeOf(call.error), "ERR_TIMEOUT");
  });

  it("reports an unknown outcome when the handler fails part-way", async () => {
    const { follower, leader, until } = pair();
    leader.onCall(async () => {
      throw new Error("disk on fire");
    });
    const call = track(follower.call(nodeId(2), text("put x"), 1_000));
    await until(call.settled);
    assert.equal(codeOf(call.error), "ERR_TIMEOUT");
    assert.match(String(call.error), /disk on fire/);
  });

  it("answers ERR_UNAVAILABLE when the peer takes no calls (nothing was done)", async () => {
    const { follower, until } = pair();
    const call = track(follower.call(nodeId(2), text("put x"), 1_000));
    await until(call.settled);
    assert.equal(codeOf(call.error), "ERR_UNAVAILABLE");
  });

  it("fails waiting calls with an unknown outcome when the caller's link reports the peer unreachable", async () => {
    const { follower, leader, network, until } = pair();
    let release: (() => void) | undefined;
    leader.onCall(
      () =>
        new Promise<Uint8Array>((resolve) => {
          release = () => resolve(text("late"));
        }),
    );
    const call = track(follower.call(nodeId(2), text("put x"), 60_000));
    await until(() => release !== undefined);
    // Any send to an unreachable peer reports it; the waiting call's way back is in doubt.
    network.cut(nodeId(1), nodeId(2));
    await assert.rejects(follower.call(nodeId(2), text("y"), 1_000), (e) => codeOf(e) === "ERR_UNAVAILABLE");
    follower.sender().send([
      {
        type: "heartbeat",
        groupId: groupId(1),
        from: nodeId(1),
        to: nodeId(2),
        term: term(1),
        commitIndex: logIndex(0),
        readRound: 0,
      },
    ]);
    await until(call.settled);
    assert.equal(codeOf(call.error), "ERR_TIMEOUT");
    release?.();
  });

  it("ignores a reply from another run of the caller and fails shutting-down calls", async () => {
    const { follower, leader, transports, scheduler, until } = pair();
    let arrived = false;
    leader.onCall(() => {
      arrived = true;
      return new Promise<Uint8Array>(() => {});
    });
    const call = track(follower.call(nodeId(2), text("put x"), 60_000));
    await until(() => arrived);
    // A reply with this call's sequence number but another run's nonce settles nothing.
    for (const run of [0, 1, 2 ** 31 + 1]) {
      transports[1]?.send(nodeId(1), {
        kind: "reply",
        run,
        seq: 1,
        status: "answered",
        body: text("forged"),
      });
    }
    scheduler.runUntil(scheduler.nowMs + 1_000);
    await turn();
    assert.equal(call.settled(), false);
    follower.close();
    await until(call.settled);
    assert.equal(codeOf(call.error), "ERR_SHUTTING_DOWN");
  });
});

describe("node wire messages", () => {
  it("round-trips calls, replies and peer info with client endpoints and state hashes", () => {
    const messages: NodeWireMessage[] = [
      { kind: "call", run: 7, seq: 1, body: text("abc") },
      { kind: "reply", run: 7, seq: 1, status: "failed", body: text("why") },
      {
        kind: "peer-info",
        info: {
          id: nodeId(3),
          name: "n3",
          httpUrl: "http://h:1",
          endpoints: { redis: "h:6381", text: "h:6661", grpc: "h:50052" },
          peerAddress: "h:7003",
        },
      },
      {
        kind: "peer-info",
        info: {
          id: nodeId(2),
          name: "n2",
          httpUrl: "http://h:2",
          endpoints: {},
          stateHashes: [
            { index: 10, hash: "a".repeat(64) },
            { index: 20, hash: "b".repeat(64) },
          ],
        },
      },
    ];
    for (const m of messages) {
      const decoded = decodeNodeWire(encodeNodeWire(m));
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.message, m);
    }
  });

  it("decodes what an older node sends: peer info without a peer address", () => {
    const info = { id: nodeId(3), name: "n3", httpUrl: "http://h:1", endpoints: { redis: "h:6381" } };
    const decoded = decodeNodeWire(encodeNodeWire({ kind: "peer-info", info }));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.message, { kind: "peer-info", info });
  });

  it("never throws on random bytes", () => {
    const prng = new Prng(42);
    for (let i = 0; i < 2_000; i++) {
      const bytes = Uint8Array.from({ length: prng.below(40) }, (_, j) =>
        j === 0 ? 64 + prng.below(6) : prng.below(256),
      );
      decodeNodeWire(bytes);
    }
  });
});
