// The TLS transport between real sockets on 127.0.0.1 (ephemeral ports, every server closed):
// messages flow both ways and in order, mutual TLS and the hello checks refuse impostors, size and
// checksum limits drop a misbehaving connection, full queues drop and report, and a restarted peer
// is reached again.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { groupId } from "../../../src/raft/types.js";
import { concatBytes, encodeFrame, FrameDecoder, FrameType } from "../../../src/transport/frame.js";
import {
  decodeWelcome,
  encodeHello,
  type Hello,
  PROTOCOL_VERSION,
  type Welcome,
} from "../../../src/transport/handshake.js";
import type { TransportSettings } from "../../../src/transport/settings.js";
import type { TransportEvent } from "../../../src/transport/transport.js";
import { Prng } from "../../../src/util/prng.js";
import { connectAll, makeNode, type Node, n, testCerts, waitFor } from "./helpers.js";

const open: Node[] = [];
async function started(id: number, overrides: Parameters<typeof makeNode>[1] = {}): Promise<Node> {
  const node = await makeNode(id, overrides);
  open.push(node);
  await node.transport.start();
  return node;
}
after(async () => {
  for (const node of open) await node.transport.close();
});

function eventsOf<K extends TransportEvent["kind"]>(
  node: Node,
  kind: K,
): Extract<TransportEvent, { kind: K }>[] {
  return node.events.filter((e): e is Extract<TransportEvent, { kind: K }> => e.kind === kind);
}

function refusalCodes(node: Node): string[] {
  return eventsOf(node, "inbound-refused").map((e) => e.error.code);
}

function dialFailureCodes(node: Node): string[] {
  return eventsOf(node, "dial-failed").map((e) => e.error.code);
}

/** A raw TLS client that completed TLS with node `id`'s certificate but has said nothing yet. */
async function rawTls(id: number, port: number): Promise<{ socket: TLSSocket; closed: Promise<void> }> {
  const c = await testCerts();
  const pair = c.nodes.get(id);
  assert.ok(pair);
  const socket = tlsConnect({
    host: "127.0.0.1",
    port,
    ca: c.ca.cert,
    cert: pair.cert,
    key: pair.key,
    minVersion: "TLSv1.3",
    checkServerIdentity: () => undefined,
  });
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
  return { socket, closed };
}

/** Sends a hello (by default a correct one for node `id`) and returns the listener's answer. */
async function handshake(socket: TLSSocket, hello: Hello): Promise<Welcome> {
  socket.write(concatBytes(encodeFrame(FrameType.hello, 0, encodeHello(hello), 4096)));
  const decoder = new FrameDecoder(4096);
  return new Promise<Welcome>((resolve) => {
    socket.on("data", function onData(chunk: Buffer) {
      const { frames } = decoder.push(chunk);
      const welcome = frames[0];
      if (welcome === undefined) return;
      socket.off("data", onData);
      resolve(decodeWelcome(welcome.payload));
    });
  });
}

/** A raw peer past a successful handshake, to send what a correct transport never would. */
async function rawPeer(id: number, port: number): Promise<{ socket: TLSSocket; closed: Promise<void> }> {
  const peer = await rawTls(id, port);
  const welcome = await handshake(peer.socket, {
    protocolVersion: PROTOCOL_VERSION,
    purpose: "messages",
    nodeId: id,
    clusterId: "test-cluster",
  });
  assert.equal(welcome.accepted, true);
  return peer;
}

describe("TLS transport", () => {
  it("carries messages both ways, in order per sender, with their groups", async () => {
    const [a, b, c] = [await started(1), await started(2), await started(3)];
    connectAll([a, b, c]);
    const count = 2000;
    for (let i = 0; i < count; i++) {
      a.transport.send(n(2), { group: 1, text: `a${i}` });
      c.transport.send(n(2), { group: 3, text: `c${i}` });
      b.transport.send(n(1), { group: 2, text: `b${i}` });
    }
    await waitFor("all messages", () => b.received.length === 2 * count && a.received.length === count);
    assert.deepEqual(
      b.received.filter((m) => m.from === 1).map((m) => m.text),
      Array.from({ length: count }, (_, i) => `a${i}`),
    );
    assert.deepEqual(
      b.received.filter((m) => m.from === 3).map((m) => m.text),
      Array.from({ length: count }, (_, i) => `c${i}`),
    );
    assert.ok(b.received.every((m) => (m.from === 1 ? m.group === 1 : m.group === 3)));
    assert.deepEqual(
      a.received.map((m) => [m.from, m.group, m.text]),
      Array.from({ length: count }, (_, i) => [2, 2, `b${i}`]),
    );
    assert.deepEqual(a.unreachable, []);
  });

  it("refuses a peer whose certificate comes from another CA, in both directions", async () => {
    const c = await testCerts();
    const a = await started(1);
    // The impostor trusts the real CA (so it would accept node 1) but shows a foreign certificate.
    const impostor = await started(2, {
      tls: { ca: c.ca.cert, cert: c.foreignNode2.cert, key: c.foreignNode2.key },
    });
    connectAll([a, impostor]);
    impostor.transport.send(n(1), { group: 0, text: "let me in" });
    a.transport.send(n(2), { group: 0, text: "who are you" });
    await waitFor(
      "refusals",
      () => refusalCodes(a).includes("ERR_TLS") && dialFailureCodes(a).includes("ERR_TLS"),
    );
    await waitFor("impostor dial failure", () => dialFailureCodes(impostor).includes("ERR_TLS"));
    assert.deepEqual(a.received, []);
    assert.deepEqual(impostor.received, []);
    assert.equal(a.transport.isConnected(n(2)), false);
    assert.ok(a.unreachable.includes(2), "node 1 reports the impostor unreachable");
    await impostor.transport.close();
  });

  it("refuses a dialer whose certificate names another node, and a dialer not in the membership", async () => {
    const c = await testCerts();
    const node3 = c.nodes.get(3);
    assert.ok(node3);
    const a = await started(1);
    // Claims to be node 2 but holds node 3's (valid, CA-signed) certificate.
    const poser = await started(2, { tls: { ca: c.ca.cert, cert: node3.cert, key: node3.key } });
    connectAll([a, poser]);
    poser.transport.send(n(1), { group: 0, text: "I am node 2" });
    await waitFor("identity refusal", () => refusalCodes(a).includes("ERR_HANDSHAKE_REJECTED"));
    const refusal = eventsOf(a, "inbound-refused").find((e) => e.error.code === "ERR_HANDSHAKE_REJECTED");
    assert.equal(refusal?.claimed, 2);
    assert.match(refusal?.error.message ?? "", /identity-mismatch/);
    await waitFor("poser learns why", () => dialFailureCodes(poser).includes("ERR_HANDSHAKE_REJECTED"));
    // Node 1 also refuses to talk to the poser's listener: it is not node-2 either.
    await waitFor("node 1's dial refused", () => dialFailureCodes(a).includes("ERR_HANDSHAKE_REJECTED"));
    assert.deepEqual(a.received, []);
    await poser.transport.close();

    // A genuine node 3 that node 1 does not count as a member is refused with ERR_PEER_UNKNOWN.
    const stranger = await started(3);
    const a2 = await started(1, { isMember: (id) => id === 2 });
    stranger.transport.setPeers(new Map([[n(1), a2.transport.listenAddress ?? { host: "", port: 0 }]]));
    stranger.transport.send(n(1), { group: 0, text: "hello" });
    await waitFor("not-member refusal", () => refusalCodes(a2).includes("ERR_PEER_UNKNOWN"));
    await waitFor("stranger told", () => dialFailureCodes(stranger).includes("ERR_PEER_UNKNOWN"));
    assert.deepEqual(a2.received, []);
    await stranger.transport.close();
  });

  it("refuses a dialer from another cluster and one with the tools' client certificate", async () => {
    const c = await testCerts();
    const a = await started(1);
    const other = await started(2, { clusterId: "another-cluster" });
    connectAll([a, other]);
    other.transport.send(n(1), { group: 0, text: "hi" });
    await waitFor("cluster refusal", () =>
      eventsOf(a, "inbound-refused").some((e) => /cluster-mismatch/.test(e.error.message)),
    );
    await other.transport.close();
    const tool = await started(3, { tls: { ca: c.ca.cert, cert: c.client.cert, key: c.client.key } });
    tool.transport.setPeers(new Map([[n(1), a.transport.listenAddress ?? { host: "", port: 0 }]]));
    tool.transport.send(n(1), { group: 0, text: "hi" });
    await waitFor("client cert refusal", () =>
      eventsOf(a, "inbound-refused").some(
        (e) => e.claimed === 3 && /identity-mismatch/.test(e.error.message),
      ),
    );
    assert.deepEqual(a.received, []);
    await tool.transport.close();
  });

  it("drops a connection whose frame header declares more than frameBytesMax, before the body", async () => {
    const a = await started(1, { settings: { frameBytesMax: 64 * 1024 } });
    a.transport.setPeers(new Map([[n(2), { host: "127.0.0.1", port: 1 }]]));
    const port = a.transport.listenAddress?.port ?? 0;
    const { socket, closed } = await rawPeer(2, port);
    // A valid small message first, to show the connection works.
    const ok = encodeFrame(FrameType.message, 0, new Uint8Array([0, 0, 0, 5, 104, 105]), 1 << 30);
    socket.write(concatBytes(ok));
    await waitFor("small message", () => a.received.length === 1);
    // Only the header of a 1 GiB frame: the listener must hang up without waiting for the body.
    const huge = encodeFrame(FrameType.message, 0, new Uint8Array(0), 1 << 30)[0] ?? new Uint8Array(0);
    new DataView(huge.buffer, huge.byteOffset).setUint32(8, 1 << 29);
    socket.write(huge);
    await closed;
    await waitFor("drop event", () => eventsOf(a, "inbound-dropped").length === 1);
    assert.equal(eventsOf(a, "inbound-dropped")[0]?.error.code, "ERR_FRAME_TOO_LARGE");
    assert.equal(a.received.length, 1);
  });

  it("drops a connection on a checksum mismatch or an undecodable message", async () => {
    const a = await started(1);
    a.transport.setPeers(new Map([[n(2), { host: "127.0.0.1", port: 1 }]]));
    const port = a.transport.listenAddress?.port ?? 0;
    const first = await rawPeer(2, port);
    const bad = concatBytes(encodeFrame(FrameType.message, 0, new Uint8Array([0, 0, 0, 0, 65]), 4096));
    bad[bad.length - 1] = 66;
    first.socket.write(bad);
    await first.closed;
    const second = await rawPeer(2, port);
    second.socket.write(concatBytes(encodeFrame(FrameType.message, 0, new Uint8Array([1, 2]), 4096)));
    await second.closed;
    await waitFor("drop events", () => eventsOf(a, "inbound-dropped").length === 2);
    assert.deepEqual(
      eventsOf(a, "inbound-dropped").map((e) => e.error.code),
      ["ERR_FRAME_CORRUPT", "ERR_MESSAGE_DECODE"],
    );
    assert.deepEqual(a.received, []);
  });

  it("a frame too large for the receiver's limit costs the connection, and later messages still arrive", async () => {
    const a = await started(1, { settings: { frameBytesMax: 1024 * 1024 } });
    const b = await started(2, { settings: { frameBytesMax: 64 * 1024 } });
    connectAll([a, b]);
    a.transport.send(n(2), { group: 0, text: "x".repeat(200 * 1024) });
    await waitFor("drop", () =>
      eventsOf(b, "inbound-dropped").some((e) => e.error.code === "ERR_FRAME_TOO_LARGE"),
    );
    await waitFor("reconnected", () => eventsOf(a, "connected").length >= 2);
    a.transport.send(n(2), { group: 0, text: "small" });
    await waitFor("small message", () => b.received.some((m) => m.text === "small"));
    assert.ok(b.received.every((m) => m.text.length < 1000));
    // Sending something no receiver could ever take is the caller's bug, reported at once.
    assert.throws(() => a.transport.send(n(2), { group: 0, text: "y".repeat(2 * 1024 * 1024) }), {
      code: "ERR_FRAME_TOO_LARGE",
    });
  });

  it("a full per-peer queue drops the message and reports the peer unreachable; unknown peers too", async () => {
    // Node 2's address points at a port nobody listens on, so nothing ever drains the queue.
    const a = await started(1, {
      settings: { peerQueueMessagesMax: 10, reconnectBackoffBaseMs: 1000, reconnectBackoffMaxMs: 1000 },
    });
    a.transport.setPeers(new Map([[n(2), { host: "127.0.0.1", port: 1 }]]));
    await waitFor("first dial failure", () => dialFailureCodes(a).length >= 1);
    // A refused TCP connection is a lost connection, not a TLS problem.
    assert.equal(dialFailureCodes(a)[0], "ERR_CONNECTION_LOST");
    const before = a.unreachable.length;
    for (let i = 0; i < 15; i++) a.transport.send(n(2), { group: 0, text: `m${i}` });
    const dropped = eventsOf(a, "message-dropped");
    assert.equal(dropped.length, 5);
    assert.ok(dropped.every((e) => e.error.code === "ERR_QUEUE_FULL" && e.peer === 2));
    assert.equal(a.unreachable.length - before, 5);
    assert.doesNotThrow(() => a.transport.send(n(9), { group: 0, text: "nobody" }));
    assert.equal(eventsOf(a, "message-dropped").at(-1)?.error.code, "ERR_PEER_UNKNOWN");
    assert.equal(a.unreachable.at(-1), 9);
  });

  /**
   * Node 1 (with `settings`) talks to node 2, which restarts on the same port; node 1 queues "while
   * down" meanwhile. Returns both, the restarted node 2 knowing node 1 but not yet dialled by it.
   */
  async function restartedPeer(settings?: Partial<TransportSettings>) {
    const a = await started(1, settings === undefined ? {} : { settings });
    const b = await started(2);
    connectAll([a, b]);
    a.transport.send(n(2), { group: 0, text: "before" });
    await waitFor("first message", () => b.received.length === 1);
    const port = b.transport.listenAddress?.port ?? 0;
    await b.transport.close();
    await waitFor("disconnect noticed", () => eventsOf(a, "disconnected").length === 1);
    a.transport.send(n(2), { group: 0, text: "while down" });
    const b2 = await started(2, { listen: { host: "127.0.0.1", port } });
    b2.transport.setPeers(new Map([[n(1), a.transport.listenAddress ?? { host: "", port: 0 }]]));
    return { a, b2 };
  }

  it("reconnects after the remote restarts and delivers the queued messages", async () => {
    const { a, b2 } = await restartedPeer();
    assert.ok(a.unreachable.includes(2));
    a.transport.send(n(2), { group: 0, text: "after" });
    await waitFor("messages after restart", () => b2.received.some((m) => m.text === "after"));
    assert.deepEqual(
      b2.received.map((m) => m.text),
      ["while down", "after"],
    );
  });

  it("redials at once, not after its backoff, when the restarted peer dials in", async () => {
    // A minute of backoff: without the redial the queued message would not arrive within waitFor.
    const { b2 } = await restartedPeer({ reconnectBackoffBaseMs: 60_000, reconnectBackoffMaxMs: 60_000 });
    // b2 dials a (it has a message for it); a answers by redialling b2 at once.
    b2.transport.send(n(1), { group: 0, text: "hello" });
    await waitFor("the queued message", () => b2.received.some((m) => m.text === "while down"));
  });

  it("refuses another protocol version with a reason, and drops a dialer that never says hello", async () => {
    const a = await started(1, { settings: { handshakeTimeoutMs: 200 } });
    a.transport.setPeers(new Map([[n(2), { host: "127.0.0.1", port: 1 }]]));
    const port = a.transport.listenAddress?.port ?? 0;
    const future = await rawTls(2, port);
    const welcome = await handshake(future.socket, {
      protocolVersion: PROTOCOL_VERSION + 1,
      purpose: "messages",
      nodeId: 2,
      clusterId: "test-cluster",
    });
    assert.equal(welcome.accepted, false);
    assert.equal(welcome.accepted ? "" : welcome.reason, "protocol-version");
    await future.closed;
    const silent = await rawTls(2, port);
    await silent.closed;
    await waitFor("timeout event", () => refusalCodes(a).includes("ERR_HANDSHAKE_TIMEOUT"));
  });

  it("splits a flush at writeBatchBytesMax without losing or reordering frames", async () => {
    const a = await started(1, { settings: { writeBatchBytesMax: 1024 } });
    const b = await started(2);
    connectAll([a, b]);
    const count = 300;
    for (let i = 0; i < count; i++) a.transport.send(n(2), { group: 0, text: `${i}:${"z".repeat(700)}` });
    await waitFor("all messages", () => b.received.length === count);
    assert.deepEqual(
      b.received.map((m) => Number(m.text.split(":")[0])),
      Array.from({ length: count }, (_, i) => i),
    );
  });

  it("refuses connections beyond inboundConnectionsMax", async () => {
    const a = await started(1, { settings: { inboundConnectionsMax: 1 } });
    a.transport.setPeers(new Map([[n(2), { host: "127.0.0.1", port: 1 }]]));
    const port = a.transport.listenAddress?.port ?? 0;
    const first = await rawPeer(2, port);
    const c = await testCerts();
    const pair = c.nodes.get(2);
    assert.ok(pair);
    const second = tlsConnect({ host: "127.0.0.1", port, ca: c.ca.cert, cert: pair.cert, key: pair.key });
    second.on("error", () => {});
    const outcome = await new Promise<string>((resolve) => {
      second.once("secureConnect", () => resolve("connected"));
      second.once("close", () => resolve("closed"));
    });
    assert.equal(outcome, "closed");
    first.socket.destroy();
  });

  it("redials through the injected env with jittered exponential backoff", async () => {
    const delays: number[] = [];
    const prng = new Prng(42);
    const a = await started(1, {
      settings: { reconnectBackoffBaseMs: 8, reconnectBackoffMaxMs: 64, handshakeTimeoutMs: 10_000 },
      env: {
        nowMs: () => performance.now(),
        setTimer(delayMs, callback) {
          if (delayMs !== 10_000) delays.push(delayMs);
          const timer = setTimeout(callback, delayMs);
          return { cancel: () => clearTimeout(timer) };
        },
        below: (bound) => prng.below(bound),
      },
    });
    a.transport.setPeers(new Map([[n(2), { host: "127.0.0.1", port: 1 }]]));
    await waitFor("six redials", () => delays.length >= 6);
    const ceilings = [8, 16, 32, 64, 64, 64];
    ceilings.forEach((ceiling, attempt) => {
      const delay = delays[attempt] ?? -1;
      assert.ok(
        delay >= ceiling / 2 && delay <= ceiling,
        `attempt ${attempt}: ${delay} outside [${ceiling / 2}, ${ceiling}]`,
      );
    });
    assert.equal(dialFailureCodes(a).length >= 6, true);
  });

  it("send after close drops the message quietly, with an ERR_TRANSPORT_CLOSED event", async () => {
    const a = await started(1);
    await a.transport.close();
    assert.doesNotThrow(() => a.transport.send(n(2), { group: 0, text: "late" }));
    assert.equal(eventsOf(a, "message-dropped").at(-1)?.error.code, "ERR_TRANSPORT_CLOSED");
    assert.deepEqual(a.unreachable, []);
    await assert.rejects(
      a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), (async function* () {})()),
      {
        code: "ERR_TRANSPORT_CLOSED",
      },
    );
  });
});
