// A peer link's batching, seen at its socket: frames sent in one turn of the event loop leave in one
// write at the end of that turn, and flushNow writes what is queued at once (the path a leader's new
// entries and a follower's acknowledgements take). The socket is a real, unconnected net.Socket
// whose write is recorded, so no network or timing is involved.
import assert from "node:assert/strict";
import { Socket } from "node:net";
import { describe, it } from "node:test";
import { nodeId } from "../../../src/raft/types.js";
import { systemTransportEnv } from "../../../src/transport/env.js";
import { FrameConnection } from "../../../src/transport/frame-connection.js";
import { PeerLink } from "../../../src/transport/peer-link.js";
import { defaultTransportSettings } from "../../../src/transport/settings.js";

/** A link whose connection records each socket write (as the bytes written). */
async function recordedLink(): Promise<{ link: PeerLink; writes: Uint8Array[] }> {
  const writes: Uint8Array[] = [];
  const socket = new Socket();
  socket.write = ((chunk: Uint8Array) => {
    writes.push(chunk);
    return true;
  }) as Socket["write"];
  let connected: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    connected = resolve;
  });
  const link = new PeerLink(
    nodeId(2),
    { host: "127.0.0.1", port: 1 },
    {
      env: systemTransportEnv(),
      settings: defaultTransportSettings,
      dial: async (_peer, _address, handlers) => new FrameConnection(socket, 1024, handlers),
      emit: (event) => {
        if (event.kind === "connected") connected();
      },
      reportUnreachable: () => {},
    },
  );
  link.connect();
  await ready;
  // Let the flush scheduled on connecting run, so each test starts from an idle link.
  await new Promise((resolve) => setImmediate(resolve));
  return { link, writes };
}

const frame = (byte: number) => [new Uint8Array([byte, byte])];

describe("PeerLink batching", () => {
  it("writes the frames of one turn together, at the end of the turn", async () => {
    const { link, writes } = await recordedLink();
    link.enqueue(frame(1));
    link.enqueue(frame(2));
    assert.equal(writes.length, 0, "nothing is written before the turn ends");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(writes, [new Uint8Array([1, 1, 2, 2])]);
    link.close();
  });

  it("flushNow writes everything queued at once, in one write", async () => {
    const { link, writes } = await recordedLink();
    link.enqueue(frame(1));
    link.enqueue(frame(2));
    link.flushNow();
    assert.deepEqual(writes, [new Uint8Array([1, 1, 2, 2])]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 1, "the end of the turn finds nothing left to write");
    link.close();
  });
});
