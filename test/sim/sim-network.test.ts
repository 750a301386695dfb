// The simulated network: latency stays in range, loss/duplication/reordering happen as configured,
// each partition shape cuts exactly the links it should (also for messages already in flight), the
// in-flight bound holds, and a seed replays the same delivery trace.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../src/util/prng.js";
import { Scheduler } from "./scheduler.js";
import { type NetworkOptions, SimNetwork } from "./sim-network.js";

const calm: NetworkOptions = {
  latencyMinMs: 1,
  latencyMaxMs: 10,
  loss: [0, 1],
  duplicate: [0, 1],
  reorder: [0, 1],
  reorderExtraMaxMs: 0,
  fifo: true,
  inflightMax: 10_000,
};

interface Delivery {
  from: number;
  to: number;
  msg: number;
  atMs: number;
}

function setup(options: Partial<NetworkOptions> = {}, seed = 1, nodes = [1, 2, 3, 4, 5]) {
  const scheduler = new Scheduler();
  const got: Delivery[] = [];
  const net = new SimNetwork<number>(
    scheduler,
    new Prng(seed),
    nodes,
    { ...calm, ...options },
    (from, to, msg) => got.push({ from, to, msg, atMs: scheduler.nowMs }),
  );
  return { scheduler, net, got };
}

/** Sends one message on every ordered pair of distinct nodes and runs; returns the links that delivered. */
function reachable(net: SimNetwork<number>, scheduler: Scheduler, got: Delivery[], nodes = [1, 2, 3, 4, 5]) {
  got.length = 0;
  for (const a of nodes) for (const b of nodes) if (a !== b) net.send(a, b, 0);
  scheduler.runAll();
  return new Set(got.map((d) => `${d.from}>${d.to}`));
}

describe("SimNetwork", () => {
  it("delivers every message once within the latency range on a calm network", () => {
    const { scheduler, net, got } = setup();
    for (let i = 0; i < 100; i++) net.send(1, 2, i);
    scheduler.runAll();
    assert.equal(got.length, 100);
    assert.ok(got.every((d) => d.atMs >= 1 && d.atMs <= 10));
    assert.deepEqual(
      got.map((d) => d.msg),
      Array.from({ length: 100 }, (_, i) => i),
      "a FIFO link keeps order despite random latency",
    );
    assert.equal(net.counters.sent, 100);
    assert.equal(net.counters.delivered, 100);
  });

  it("reorders freely without FIFO, and only the picked messages with FIFO and a reorder chance", () => {
    const free = setup({ fifo: false });
    for (let i = 0; i < 50; i++) free.net.send(1, 2, i);
    free.scheduler.runAll();
    const order = free.got.map((d) => d.msg);
    assert.notDeepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
    const picked = setup({ reorder: [1, 4], reorderExtraMaxMs: 50 });
    for (let i = 0; i < 200; i++) picked.net.send(1, 2, i);
    picked.scheduler.runAll();
    assert.ok(picked.net.counters.reordered > 0);
    const seen = picked.got.map((d) => d.msg);
    assert.notDeepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
    );
    assert.equal(seen.length, 200);
  });

  it("loses and duplicates messages at the configured rates' extremes", () => {
    const lossy = setup({ loss: [1, 1] });
    for (let i = 0; i < 20; i++) lossy.net.send(1, 2, i);
    lossy.scheduler.runAll();
    assert.equal(lossy.got.length, 0);
    assert.equal(lossy.net.counters.lost, 20);
    const doubled = setup({ duplicate: [1, 1] });
    for (let i = 0; i < 20; i++) doubled.net.send(1, 2, i);
    doubled.scheduler.runAll();
    assert.equal(doubled.got.length, 40);
    assert.equal(doubled.net.counters.duplicated, 20);
    const some = setup({ loss: [1, 3] });
    for (let i = 0; i < 300; i++) some.net.send(1, 2, i);
    some.scheduler.runAll();
    assert.ok(some.got.length > 100 && some.got.length < 300, `${some.got.length} delivered`);
  });

  it("cuts both directions with a partition, one with a one-way partition", () => {
    const { scheduler, net, got } = setup();
    net.partition([1, 2], [3, 4, 5]);
    const links = reachable(net, scheduler, got);
    assert.ok(links.has("1>2") && links.has("3>4") && links.has("5>3"));
    assert.ok(!links.has("1>3") && !links.has("3>1") && !links.has("2>5"));
    assert.equal(links.size, 2 + 6);
    net.healAll();
    net.partitionOneWay([1], [2, 3]);
    const oneWay = reachable(net, scheduler, got);
    assert.ok(!oneWay.has("1>2") && !oneWay.has("1>3"));
    assert.ok(oneWay.has("2>1") && oneWay.has("3>1") && oneWay.has("1>4"));
  });

  it("lets a bridge node talk to both sides that cannot talk to each other", () => {
    const { scheduler, net, got } = setup();
    net.bridge(3, [1, 2], [4, 5]);
    const links = reachable(net, scheduler, got);
    for (const n of [1, 2, 4, 5]) assert.ok(links.has(`3>${n}`) && links.has(`${n}>3`));
    assert.ok(!links.has("1>4") && !links.has("5>2"));
    assert.throws(() => net.bridge(3, [3], [4]), /neither side/);
  });

  it("isolates one node and heals everything", () => {
    const { scheduler, net, got } = setup();
    net.isolate(2);
    const links = reachable(net, scheduler, got);
    assert.equal([...links].filter((l) => l.includes("2")).length, 0);
    assert.equal(links.size, 12);
    assert.match(net.describeTopology(), /1>2/);
    net.healAll();
    assert.equal(net.describeTopology(), "fully connected");
    assert.equal(reachable(net, scheduler, got).size, 20);
  });

  it("drops messages in flight when their link is cut, and delivers them if it heals first", () => {
    const { scheduler, net, got } = setup({ latencyMinMs: 10, latencyMaxMs: 10 });
    net.send(1, 2, 1);
    scheduler.runUntil(5);
    net.partition([1], [2]);
    scheduler.runAll();
    assert.equal(got.length, 0);
    assert.equal(net.counters.blockedInFlight, 1);
    net.send(1, 2, 2); // cut at send
    assert.equal(net.counters.blockedAtSend, 1);
    net.healAll();
    net.send(1, 2, 3);
    scheduler.runUntil(scheduler.nowMs + 5);
    net.partition([1], [2]);
    net.healAll(); // healed before it arrives
    scheduler.runAll();
    assert.deepEqual(
      got.map((d) => d.msg),
      [3],
    );
  });

  it("drops sends beyond the in-flight bound and counts them", () => {
    const { scheduler, net, got } = setup({ inflightMax: 5 });
    for (let i = 0; i < 8; i++) net.send(1, 2, i);
    assert.equal(net.inflight, 5);
    assert.equal(net.counters.overflowed, 3);
    scheduler.runAll();
    assert.equal(got.length, 5);
    assert.equal(net.inflight, 0);
  });

  it("applies a slow-link latency override until cleared", () => {
    const { scheduler, net, got } = setup();
    net.setLinkLatency(1, 2, 100, 200);
    net.send(1, 2, 0);
    net.send(2, 1, 0);
    scheduler.runAll();
    const slow = got.find((d) => d.from === 1);
    const fast = got.find((d) => d.from === 2);
    assert.ok(slow && slow.atMs >= 100 && slow.atMs <= 200);
    assert.ok(fast && fast.atMs <= 10);
    net.clearLinkLatencies();
    const before = scheduler.nowMs;
    net.send(1, 2, 1);
    scheduler.runAll();
    assert.ok((got.at(-1)?.atMs ?? 0) - before <= 10);
  });

  it("replays the same delivery trace from the same seed, and a different one from another", () => {
    const trace = (seed: number) => {
      const { scheduler, net, got } = setup(
        { fifo: false, loss: [1, 10], duplicate: [1, 10], reorder: [1, 5], reorderExtraMaxMs: 20 },
        seed,
      );
      for (let i = 0; i < 200; i++)
        net.send(1 + (i % 5), 1 + ((i * 7) % 5 === i % 5 ? (i + 1) % 5 : (i * 7) % 5), i);
      scheduler.runAll();
      return { got, counters: { ...net.counters } };
    };
    assert.deepEqual(trace(9), trace(9));
    assert.notDeepEqual(trace(9).got, trace(10).got);
  });
});
