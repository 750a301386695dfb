// The in-memory twin under a virtual clock and a seeded PRNG: it delivers in order by default,
// and its faults (drop, duplicate, delay with reordering, partitions, full links) behave as
// configured and replay exactly from the same seed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { groupId, type NodeId } from "../../../src/raft/types.js";
import type { TimerHandle, TransportEnv } from "../../../src/transport/env.js";
import {
  type LinkFaults,
  MemoryNetwork,
  type MemoryTransport,
  noFaults,
} from "../../../src/transport/memory-transport.js";
import { Prng } from "../../../src/util/prng.js";
import { n, type TestMessage, textCodec } from "./helpers.js";

/** A virtual clock: timers run only when the test advances time. */
class ManualEnv implements TransportEnv {
  #now = 0;
  #seq = 0;
  readonly #timers: { at: number; seq: number; run: () => void; live: boolean }[] = [];
  readonly #prng: Prng;
  constructor(seed: number) {
    this.#prng = new Prng(seed);
  }
  nowMs(): number {
    return this.#now;
  }
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = { at: this.#now + delayMs, seq: this.#seq++, run: callback, live: true };
    this.#timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }
  below(bound: number): number {
    return this.#prng.below(bound);
  }
  /** Runs every timer due within `ms`, in time order (ties in scheduling order). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      this.#timers.sort((x, y) => x.at - y.at || x.seq - y.seq);
      const next = this.#timers[0];
      if (next === undefined || next.at > end) break;
      this.#timers.shift();
      this.#now = next.at;
      if (next.live) next.run();
    }
    this.#now = end;
  }
}

interface Cluster {
  readonly env: ManualEnv;
  readonly network: MemoryNetwork<TestMessage>;
  readonly inbox: Map<number, string[]>;
  readonly unreachable: Map<number, NodeId[]>;
  readonly transports: Map<number, MemoryTransport<TestMessage>>;
  send(from: number, to: number, text: string): void;
}

function cluster(seed: number, faults: LinkFaults = noFaults, peerQueueMessagesMax = 4096): Cluster {
  const env = new ManualEnv(seed);
  const network = new MemoryNetwork<TestMessage>({ env, codec: textCodec, faults, peerQueueMessagesMax });
  const inbox = new Map<number, string[]>();
  const unreachable = new Map<number, NodeId[]>();
  const ids = [1, 2, 3];
  const transports = new Map(ids.map((id) => [id, network.transport(n(id))]));
  for (const [id, t] of transports) {
    inbox.set(id, []);
    unreachable.set(id, []);
    t.setPeers(new Map(ids.filter((p) => p !== id).map((p) => [n(p), { host: "memory", port: p }])));
    t.onMessage((m) => inbox.get(id)?.push(`${m.from}:${m.message.text}`));
    t.onUnreachable((p) => unreachable.get(id)?.push(p));
  }
  return {
    env,
    network,
    inbox,
    unreachable,
    transports,
    send: (from, to, text) => transports.get(from)?.send(n(to), { group: 7, text }),
  };
}

const odds = (numerator: number, denominator: number) => ({ numerator, denominator });

describe("memory transport", () => {
  it("delivers every message once and in order, only when time advances", () => {
    const c = cluster(1);
    for (let i = 0; i < 5; i++) c.send(1, 2, `m${i}`);
    assert.deepEqual(c.inbox.get(2), []);
    c.env.advance(0);
    assert.deepEqual(c.inbox.get(2), ["1:m0", "1:m1", "1:m2", "1:m3", "1:m4"]);
    assert.equal(c.network.inFlight, 0);
  });

  it("drops everything at odds 1/1 silently, and duplicates everything at odds 1/1", () => {
    const lossy = cluster(2, { ...noFaults, drop: odds(1, 1) });
    lossy.send(1, 2, "gone");
    lossy.env.advance(10);
    assert.deepEqual(lossy.inbox.get(2), []);
    assert.deepEqual(lossy.unreachable.get(1), []);
    const doubled = cluster(3, { ...noFaults, duplicate: odds(1, 1) });
    doubled.send(1, 2, "twice");
    doubled.env.advance(10);
    assert.deepEqual(doubled.inbox.get(2), ["1:twice", "1:twice"]);
  });

  it("delays within bounds; keeps order unless reordering is on; replays from the seed", () => {
    const run = (seed: number, reorder: boolean): string[] => {
      const c = cluster(seed, { ...noFaults, delayMinMs: 5, delayMaxMs: 50, reorder });
      for (let i = 0; i < 40; i++) c.send(1, 2, `m${i}`);
      c.env.advance(4);
      assert.deepEqual(c.inbox.get(2), [], "nothing before the minimum delay");
      c.env.advance(1000);
      return c.inbox.get(2) ?? [];
    };
    const inOrder = Array.from({ length: 40 }, (_, i) => `1:m${i}`);
    assert.deepEqual(run(4, false), inOrder);
    const shuffled = run(4, true);
    assert.notDeepEqual(shuffled, inOrder);
    assert.deepEqual([...shuffled].sort(), [...inOrder].sort());
    assert.deepEqual(run(4, true), shuffled, "same seed, same order");
  });

  it("partitions drop and report unreachable, including messages already in flight; heal restores", () => {
    const c = cluster(5, { ...noFaults, delayMinMs: 10, delayMaxMs: 10 });
    c.send(1, 2, "in flight");
    c.network.partition([[n(1)], [n(2), n(3)]]);
    c.send(1, 3, "blocked");
    c.send(2, 3, "inside");
    c.env.advance(20);
    assert.deepEqual(c.inbox.get(2), []);
    assert.deepEqual(c.inbox.get(3), ["2:inside"]);
    assert.deepEqual(c.unreachable.get(1), [3]);
    c.network.heal();
    c.send(1, 3, "healed");
    c.env.advance(20);
    assert.deepEqual(c.inbox.get(3), ["2:inside", "1:healed"]);
  });

  it("one-way cuts affect only their direction", () => {
    const c = cluster(6);
    c.network.cut(n(1), n(2));
    c.send(1, 2, "no");
    c.send(2, 1, "yes");
    c.env.advance(1);
    assert.deepEqual(c.inbox.get(2), []);
    assert.deepEqual(c.inbox.get(1), ["2:yes"]);
  });

  it("a full link drops and reports unreachable; unknown peers are reported too", () => {
    const c = cluster(7, { ...noFaults, delayMinMs: 100, delayMaxMs: 100 }, 3);
    for (let i = 0; i < 5; i++) c.send(1, 2, `m${i}`);
    assert.deepEqual(c.unreachable.get(1), [2, 2]);
    c.send(1, 9, "stranger");
    assert.deepEqual(c.unreachable.get(1), [2, 2, 9]);
    c.env.advance(100);
    assert.deepEqual(c.inbox.get(2), ["1:m0", "1:m1", "1:m2"]);
  });

  it("a closed node receives nothing and is reported unreachable; a restarted one receives again", () => {
    const c = cluster(8);
    const old = c.transports.get(2);
    c.send(1, 2, "queued before the crash");
    void old?.close();
    c.send(1, 2, "after the crash");
    c.env.advance(1);
    assert.deepEqual(c.inbox.get(2), []);
    assert.deepEqual(c.unreachable.get(1), [2]);
    const restarted = c.network.transport(n(2));
    const inbox: string[] = [];
    restarted.onMessage((m) => inbox.push(m.message.text));
    c.send(1, 2, "after the restart");
    c.env.advance(1);
    assert.deepEqual(inbox, ["after the restart"]);
    assert.throws(() => c.network.transport(n(2)), /already has a transport/);
  });

  it("streams a snapshot to the handler and resolves the sender when it is consumed", async () => {
    const env = new ManualEnv(9);
    const network = new MemoryNetwork<TestMessage>({ env });
    const a = network.transport(n(1));
    const b = network.transport(n(2));
    a.setPeers(new Map([[n(2), { host: "memory", port: 2 }]]));
    const got: number[] = [];
    b.onSnapshot((s) => {
      void (async () => {
        for await (const chunk of s.chunks) got.push(...chunk);
      })();
    });
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 2]);
      yield new Uint8Array([3]);
    }
    await a.sendSnapshot(n(2), groupId(1), new Uint8Array(0), chunks());
    assert.deepEqual(got, [1, 2, 3]);
    network.partition([[n(1)], [n(2)]]);
    await assert.rejects(a.sendSnapshot(n(2), groupId(1), new Uint8Array(0), chunks()), {
      code: "ERR_SNAPSHOT_ABORTED",
    });
  });
});
