// The proxy mesh cuts exactly the bytes that carry a link's messages: with Cairn's flow only the
// dialer's own connection, with etcd's flow one direction on each of the pair's two connections.
// Checked with plain TCP on 127.0.0.1: "servers" stand for the two nodes' listeners.
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { waitFor } from "../support/wait-for.js";
import { type MessageFlow, ProxyMesh } from "./proxy-mesh.js";

const closers: (() => Promise<void>)[] = [];
after(async () => {
  // Newest first: sockets, then proxies, then the listeners they connected to.
  for (const close of closers.reverse()) await close();
});

/** A listener that records what it received and answers "pong" to each chunk. */
async function node(): Promise<{ port: number; received: string[] }> {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      received.push(chunk.toString());
      socket.write("pong");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  return { port: typeof address === "object" && address !== null ? address.port : 0, received };
}

/** Two nodes behind a mesh, and one connection each node "dialed" to the other through it. */
async function pair(flow: MessageFlow) {
  const nodes = [await node(), await node()];
  const mesh = await ProxyMesh.start(2, flow, (_from, to) => ({
    listen: { host: "127.0.0.1", port: 0 },
    target: { host: "127.0.0.1", port: nodes[to]?.port ?? 0 },
  }));
  closers.push(() => mesh.close());
  const dial = async (from: number, to: number) => {
    const answers: string[] = [];
    const at = mesh.address(from, to);
    const socket: Socket = connect({ host: at?.host ?? "", port: at?.port ?? 0 });
    socket.on("data", (chunk) => answers.push(chunk.toString()));
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("connect", resolve));
    closers.push(async () => void socket.destroy());
    return { socket, answers };
  };
  return { nodes, mesh, d01: await dial(0, 1), d10: await dial(1, 0) };
}

describe("proxy mesh", () => {
  it("with Cairn's flow, cutting 0->1 swallows node 0's dial to node 1 and nothing else", async () => {
    const { nodes, mesh, d01, d10 } = await pair("dialed");
    mesh.cut([{ from: 0, to: 1 }], true);
    d01.socket.write("from 0");
    d10.socket.write("from 1");
    await waitFor("node 1's dial answered", () => d10.answers.length === 1);
    assert.deepEqual(nodes[0]?.received, ["from 1"]);
    assert.deepEqual(nodes[1]?.received, [], "node 0's message never arrived");
  });

  it("with etcd's flow, cutting 0->1 swallows 0's requests on its dial and 0's answers on 1's dial", async () => {
    const { nodes, mesh, d01, d10 } = await pair("both-ways");
    mesh.cut([{ from: 0, to: 1 }], true);
    d01.socket.write("request from 0");
    d10.socket.write("request from 1");
    await waitFor("node 1's request reached node 0", () => nodes[0]?.received.length === 1);
    assert.deepEqual(nodes[1]?.received, [], "node 0's request never arrived");
    // Node 0 answered node 1's request, but its answer is a message 0 -> 1 too: swallowed.
    assert.deepEqual(d10.answers, []);
    mesh.heal();
  });

  it("with etcd's flow, a cut both ways refuses the pair's connections", async () => {
    const { mesh, d01, d10 } = await pair("both-ways");
    const closed = (s: Socket) => new Promise((resolve) => s.once("close", resolve));
    const both = Promise.all([closed(d01.socket), closed(d10.socket)]);
    mesh.cut(
      [
        { from: 0, to: 1 },
        { from: 1, to: 0 },
      ],
      false,
    );
    await both;
  });
});
