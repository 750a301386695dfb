// The fault-injecting TCP proxy between two TLS transports on 127.0.0.1: it relays faithfully, and
// on command it cuts the link (drop), swallows traffic on open connections (blackhole), severs
// connections and delays delivery without reordering; healing lets the transports recover.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { FaultProxy } from "../../../src/transport/fault-proxy.js";
import { makeNode, type Node, n, waitFor } from "./helpers.js";

const nodes: Node[] = [];
const proxies: FaultProxy[] = [];
after(async () => {
  for (const node of nodes) await node.transport.close();
  for (const proxy of proxies) await proxy.close();
});

/** Node 1 reaches node 2 only through a proxy; node 2 reaches node 1 directly. */
async function pair(): Promise<{ a: Node; b: Node; proxy: FaultProxy }> {
  const a = await makeNode(1);
  const b = await makeNode(2);
  nodes.push(a, b);
  await a.transport.start();
  await b.transport.start();
  const proxy = new FaultProxy({
    listen: { host: "127.0.0.1", port: 0 },
    target: b.transport.listenAddress ?? { host: "", port: 0 },
  });
  proxies.push(proxy);
  a.transport.setPeers(new Map([[n(2), await proxy.start()]]));
  b.transport.setPeers(new Map([[n(1), a.transport.listenAddress ?? { host: "", port: 0 }]]));
  return { a, b, proxy };
}

const texts = (node: Node): string[] => node.received.map((m) => m.text);

describe("fault proxy", () => {
  it("relays traffic unchanged, then drop cuts the link until healed", async () => {
    const { a, b, proxy } = await pair();
    a.transport.send(n(2), { group: 0, text: "one" });
    await waitFor("relayed message", () => texts(b).includes("one"));
    assert.ok(proxy.stats.bytesForwarded > 0);

    proxy.drop();
    await waitFor("node 1 sees the link cut", () => a.events.some((e) => e.kind === "disconnected"));
    assert.ok(a.unreachable.includes(2));
    a.transport.send(n(2), { group: 0, text: "two" });
    // Redials are cut as soon as they arrive.
    const accepted = proxy.stats.connectionsAccepted;
    await waitFor("redials refused", () => proxy.stats.connectionsAccepted >= accepted + 2);
    assert.deepEqual(texts(b), ["one"]);
    assert.equal(a.transport.isConnected(n(2)), false);

    proxy.heal();
    await waitFor("queued message after heal", () => texts(b).includes("two"));
    assert.deepEqual(texts(b), ["one", "two"]);
  });

  it("blackhole swallows bytes on an open connection; heal severs it and traffic resumes", async () => {
    const { a, b, proxy } = await pair();
    a.transport.send(n(2), { group: 0, text: "before" });
    await waitFor("first message", () => texts(b).length === 1);
    proxy.blackhole("forward");
    for (let i = 0; i < 10; i++) a.transport.send(n(2), { group: 0, text: `lost ${i}` });
    await waitFor("bytes discarded", () => proxy.stats.bytesDiscarded > 0);
    // The connection stays up: TCP cannot see a blackhole.
    assert.equal(a.transport.isConnected(n(2)), true);
    assert.deepEqual(texts(b), ["before"]);
    proxy.heal();
    await waitFor("reconnect after heal", () => a.events.filter((e) => e.kind === "connected").length >= 2);
    a.transport.send(n(2), { group: 0, text: "after" });
    await waitFor("message after heal", () => texts(b).includes("after"));
    assert.ok(texts(b).every((t) => !t.startsWith("lost")));
  });

  it("sever breaks open connections once; the transport redials at once", async () => {
    const { a, b, proxy } = await pair();
    a.transport.send(n(2), { group: 0, text: "x" });
    await waitFor("message", () => texts(b).length === 1);
    proxy.sever();
    await waitFor("disconnected", () => a.events.some((e) => e.kind === "disconnected"));
    await waitFor("reconnected", () => a.events.filter((e) => e.kind === "connected").length === 2);
    a.transport.send(n(2), { group: 0, text: "y" });
    await waitFor("second message", () => texts(b).includes("y"));
  });

  it("delay holds traffic back but never reorders it, even when the delay changes mid-stream", async () => {
    const { a, b, proxy } = await pair();
    a.transport.send(n(2), { group: 0, text: "warm-up" });
    await waitFor("warm-up", () => texts(b).length === 1);
    proxy.delay(200);
    for (let i = 0; i < 50; i++) a.transport.send(n(2), { group: 0, text: `d${i}` });
    // Lift the delay while the first batch is held back, so the second must queue behind it.
    await waitFor("the first batch held back", () => proxy.stats.bytesHeld > 0);
    proxy.delay(0);
    for (let i = 50; i < 100; i++) a.transport.send(n(2), { group: 0, text: `d${i}` });
    await waitFor("all delayed messages", () => texts(b).length === 101);
    assert.equal(proxy.stats.bytesHeld, 0, "nothing is held once everything arrived");
    assert.deepEqual(
      texts(b).slice(1),
      Array.from({ length: 100 }, (_, i) => `d${i}`),
    );
    assert.throws(() => proxy.delay(-1), RangeError);
  });
});

describe("dial overrides (the fault suite's way to put a proxy on one link)", () => {
  /** Three nodes that know each other by their real addresses; node 1 dials node 2 through a proxy. */
  async function trio(proxyTarget: (b: Node, c: Node) => Node): Promise<{
    a: Node;
    b: Node;
    c: Node;
    proxy: FaultProxy;
  }> {
    const b = await makeNode(2);
    const c = await makeNode(3);
    nodes.push(b, c);
    await b.transport.start();
    await c.transport.start();
    const bAt = b.transport.listenAddress ?? { host: "", port: 0 };
    const proxy = new FaultProxy({
      listen: { host: "127.0.0.1", port: 0 },
      target: proxyTarget(b, c).transport.listenAddress ?? { host: "", port: 0 },
    });
    proxies.push(proxy);
    const via = await proxy.start();
    const a = await makeNode(1, { dialOverrides: new Map([[`${bAt.host}:${bAt.port}`, via]]) });
    nodes.push(a);
    await a.transport.start();
    const aAt = a.transport.listenAddress ?? { host: "", port: 0 };
    const cAt = c.transport.listenAddress ?? { host: "", port: 0 };
    a.transport.setPeers(
      new Map([
        [n(2), bAt],
        [n(3), cAt],
      ]),
    );
    b.transport.setPeers(
      new Map([
        [n(1), aAt],
        [n(3), cAt],
      ]),
    );
    c.transport.setPeers(
      new Map([
        [n(1), aAt],
        [n(2), bAt],
      ]),
    );
    return { a, b, c, proxy };
  }

  it("routes only the overridden link through the proxy, so cutting it is a one-way partition", async () => {
    const { a, b, c, proxy } = await trio((b) => b);
    a.transport.send(n(2), { group: 0, text: "1->2 via proxy" });
    a.transport.send(n(3), { group: 0, text: "1->3 direct" });
    await waitFor("both delivered", () => texts(b).length === 1 && texts(c).length === 1);
    assert.equal(proxy.stats.connectionsAccepted, 1, "only node 1's dial to node 2 went through the proxy");

    proxy.drop();
    await waitFor("node 1 sees the link cut", () => a.events.some((e) => e.kind === "disconnected"));
    a.transport.send(n(2), { group: 0, text: "cut" });
    b.transport.send(n(1), { group: 0, text: "2->1 still flows" });
    await waitFor("the reverse direction still delivers", () => texts(a).includes("2->1 still flows"));
    const accepted = proxy.stats.connectionsAccepted;
    await waitFor("node 1 keeps redialing into the cut", () => proxy.stats.connectionsAccepted > accepted);
    assert.deepEqual(texts(b), ["1->2 via proxy"]);

    proxy.heal();
    await waitFor("the held message after heal", () => texts(b).includes("cut"));
  });

  it("keeps mutual TLS end to end: an override that reaches the wrong node is refused", async () => {
    const { a, c } = await trio((_b, c) => c);
    a.transport.send(n(2), { group: 0, text: "meant for node 2" });
    await waitFor("the dial is rejected", () =>
      a.events.some((e) => e.kind === "dial-failed" && e.error.code === "ERR_HANDSHAKE_REJECTED"),
    );
    assert.equal(a.transport.isConnected(n(2)), false);
    assert.deepEqual(texts(c), [], "node 3 never accepts a message meant for node 2");
  });
});
