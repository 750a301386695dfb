// The in-memory twin under a virtual clock and a seeded PRNG: it delivers in order by default,
// and its faults (drop, duplicate, delay with reordering, partitions, full links) behave as
// configured and replay exactly from the same seed. Snapshots stream chunk by chunk through the
// same simulated links (the TLS transport's protocol): each test drives a transfer on the virtual
// clock and checks what a node would notice (the bytes, the sender's outcome, the consumer's).
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
import { resolveTransportSettings } from "../../../src/transport/settings.js";
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
});

/** Lets promise reactions and the generators they resume run to completion. */
const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Advances the virtual clock a millisecond at a time, letting the async code run in between, until
 * `done()` holds; fails when it does not within `limitMs` of virtual time.
 */
async function runUntil(env: ManualEnv, done: () => boolean, limitMs = 120_000): Promise<void> {
  const end = env.nowMs() + limitMs;
  await drain();
  while (!done()) {
    assert.ok(env.nowMs() < end, `condition not reached within ${limitMs} ms of virtual time`);
    env.advance(1);
    await drain();
  }
}

/** Small chunks and windows, so a short snapshot is many chunk frames and back-pressure bites. */
const snapshotSettings = resolveTransportSettings({
  frameBytesMax: 4096,
  snapshotChunkBytesMax: 4,
  snapshotWindowChunksMax: 2,
  snapshotResumeAttemptsMax: 3,
  reconnectBackoffBaseMs: 10,
  reconnectBackoffMaxMs: 40,
  snapshotResumeTimeoutMs: 5_000,
  snapshotStallTimeoutMs: 5_000,
});

const snapshotBytes = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);

/** The source: the snapshot in uneven pieces, counting how many were pulled. */
function source(pulls: { count: number }): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      for (let at = 0; at < snapshotBytes.length; at += 5) {
        pulls.count++;
        yield snapshotBytes.slice(at, at + 5);
      }
    },
  };
}

/** What one transfer did: bytes received, chunk arrivals (virtual time), and how each side ended. */
interface Transfer {
  readonly env: ManualEnv;
  readonly network: MemoryNetwork<TestMessage>;
  readonly receiver: MemoryTransport<TestMessage>;
  readonly received: number[];
  readonly log: string[];
  readonly pulls: { count: number };
  readonly handlerCalls: { count: number };
  /** Lets the consumer take one more chunk (when paused) or every chunk (`Infinity`). */
  allow(chunks: number): void;
  sender: "pending" | "done" | string;
  consumer: "pending" | "done" | string;
}

function startTransfer(seed: number, faults: LinkFaults, paused = false): Transfer {
  const env = new ManualEnv(seed);
  const network = new MemoryNetwork<TestMessage>({ env, faults, settings: snapshotSettings });
  const a = network.transport(n(1));
  const receiver = network.transport(n(2));
  a.setPeers(new Map([[n(2), { host: "memory", port: 2 }]]));
  let allowed = paused ? 0 : Number.POSITIVE_INFINITY;
  const wakers: (() => void)[] = [];
  const t: Transfer = {
    env,
    network,
    receiver,
    received: [],
    log: [],
    pulls: { count: 0 },
    handlerCalls: { count: 0 },
    allow(chunks) {
      allowed += chunks;
      for (const wake of wakers.splice(0)) wake();
    },
    sender: "pending",
    consumer: "pending",
  };
  receiver.onSnapshot((incoming) => {
    t.handlerCalls.count++;
    void (async () => {
      try {
        for await (const chunk of incoming.chunks) {
          t.received.push(...chunk);
          t.log.push(`${env.nowMs()}:${t.received.length}`);
          allowed--;
          while (allowed <= 0) await new Promise<void>((resolve) => wakers.push(resolve));
        }
        t.consumer = "done";
      } catch (error) {
        t.consumer = (error as { code?: string }).code ?? String(error);
      }
    })();
  });
  a.sendSnapshot(n(2), groupId(1), new Uint8Array([9]), source(t.pulls)).then(
    () => {
      t.sender = "done";
    },
    (error: unknown) => {
      t.sender = (error as { code?: string }).code ?? String(error);
    },
  );
  return t;
}

const slowLink: LinkFaults = { ...noFaults, delayMinMs: 1, delayMaxMs: 8 };

describe("memory transport: chunked, resumable snapshots (the TLS transport's protocol)", () => {
  it("streams a snapshot chunk by chunk and resolves the sender once the receiver consumed it", async () => {
    const t = startTransfer(9, slowLink);
    await runUntil(t.env, () => t.sender !== "pending" && t.consumer !== "pending");
    assert.equal(t.sender, "done");
    assert.equal(t.consumer, "done");
    assert.deepEqual(t.received, [...snapshotBytes]);
    assert.equal(t.log.length, 25, "12 pieces of 5 bytes split at 4 (4 + 1), then one of 4");
    assert.ok(new Set(t.log.map((l) => l.split(":")[0])).size > 4, "chunks arrive over time, not at once");
  });

  it("holds the sender to the flow-control window while the consumer does not read", async () => {
    const t = startTransfer(10, slowLink, true);
    await runUntil(t.env, () => t.received.length > 0);
    t.env.advance(1_000);
    await drain();
    // One chunk taken, two more in the window: at most 12 bytes, three 5-byte pieces, were pulled.
    assert.ok(t.pulls.count <= 3, `pulled ${t.pulls.count} pieces`);
    assert.equal(t.sender, "pending");
    t.allow(Number.POSITIVE_INFINITY);
    await runUntil(t.env, () => t.sender !== "pending");
    assert.equal(t.sender, "done");
    assert.deepEqual(t.received, [...snapshotBytes]);
  });

  it("resumes a transfer cut mid-way from the last chunk the receiver holds, with the right bytes", async () => {
    const t = startTransfer(11, slowLink);
    await runUntil(t.env, () => t.received.length >= 20);
    t.network.partition([[n(1)], [n(2)]]);
    const cutAt = t.received.length;
    t.env.advance(30);
    await drain();
    t.network.heal();
    t.network.setFaults(slowLink);
    await runUntil(t.env, () => t.sender !== "pending" && t.consumer !== "pending");
    assert.equal(t.sender, "done");
    assert.equal(t.consumer, "done");
    assert.deepEqual(t.received, [...snapshotBytes], "every byte once, in order");
    assert.equal(t.handlerCalls.count, 1, "the same transfer went on: the handler saw one stream");
    assert.ok(cutAt < snapshotBytes.length, "the cut came before the end");
  });

  it("aborts with ERR_SNAPSHOT_ABORTED when the receiver crashes mid-transfer", async () => {
    const t = startTransfer(12, slowLink);
    await runUntil(t.env, () => t.received.length >= 20);
    void t.receiver.close();
    await runUntil(t.env, () => t.sender !== "pending" && t.consumer !== "pending");
    assert.equal(t.sender, "ERR_SNAPSHOT_ABORTED");
    assert.equal(t.consumer, "ERR_TRANSPORT_CLOSED", "the crashed node's consumer never sees the end");
    assert.ok(t.received.length < snapshotBytes.length);
  });

  it("aborts with ERR_SNAPSHOT_ABORTED when the receiver is unreachable for every attempt", async () => {
    const env = new ManualEnv(13);
    const network = new MemoryNetwork<TestMessage>({ env, settings: snapshotSettings });
    const a = network.transport(n(1));
    network.transport(n(2)).onSnapshot(() => assert.fail("nothing gets through"));
    a.setPeers(new Map([[n(2), { host: "memory", port: 2 }]]));
    network.partition([[n(1)], [n(2)]]);
    let outcome = "pending";
    a.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source({ count: 0 })).then(
      () => {
        outcome = "done";
      },
      (error: unknown) => {
        outcome = (error as { code?: string }).code ?? String(error);
      },
    );
    await runUntil(env, () => outcome !== "pending");
    assert.equal(outcome, "ERR_SNAPSHOT_ABORTED");
  });

  it("a finished transfer does not count against snapshotTransfersMax", async () => {
    const env = new ManualEnv(16);
    const settings = { ...snapshotSettings, snapshotTransfersMax: 1 };
    const network = new MemoryNetwork<TestMessage>({ env, faults: slowLink, settings });
    const a = network.transport(n(1));
    const b = network.transport(n(2));
    a.setPeers(new Map([[n(2), { host: "memory", port: 2 }]]));
    b.onSnapshot((incoming) => {
      void (async () => {
        for await (const _chunk of incoming.chunks) {
          // consumed
        }
      })();
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      a.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source({ count: 0 })).then(
        () => outcomes.push("done"),
        (error: unknown) => outcomes.push((error as { code?: string }).code ?? String(error)),
      );
      await runUntil(env, () => outcomes.length === i + 1);
    }
    assert.deepEqual(outcomes, ["done", "done", "done"], "one after another, each within the resume timeout");
  });

  it("replays exactly from a seed: chunk arrival times, a cut and the resume", async () => {
    const run = async (seed: number): Promise<string[]> => {
      const t = startTransfer(seed, { ...noFaults, delayMinMs: 1, delayMaxMs: 20 });
      await runUntil(t.env, () => t.received.length >= 16);
      t.network.cut(n(2), n(1));
      t.env.advance(25);
      await drain();
      t.network.heal();
      t.network.setFaults({ ...noFaults, delayMinMs: 1, delayMaxMs: 20 });
      await runUntil(t.env, () => t.sender !== "pending");
      assert.deepEqual(t.received, [...snapshotBytes]);
      return [...t.log, `sender ${t.sender} at ${t.env.nowMs()}`];
    };
    const first = await run(14);
    assert.deepEqual(await run(14), first, "same seed, same trace");
    assert.notDeepEqual(await run(15), first, "another seed, another trace");
  });
});
