// A node that fails to start leaves nothing open: its WAL's file handles are closed, its state store
// and transport too. Before, a refused start (a peer port taken, damaged storage) left the WAL's
// handle to the garbage collector ("Closing a FileHandle object on garbage collection") and the
// Raft group ticking.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type NodeWireMessage, nodeWireCodec } from "../../../src/node/index.js";
import { CairnNode } from "../../../src/node-assembly/index.js";
import { nodeId } from "../../../src/raft/index.js";
import {
  type FileHandle,
  type FileSystem,
  MemoryStateStore,
  type OpenMode,
  SimFileSystem,
} from "../../../src/storage/index.js";
import { MemoryNetwork, type Transport } from "../../../src/transport/index.js";
import { Prng } from "../../../src/util/prng.js";
import { SimClock } from "../../support/sim-clock.js";

/** `target[property]`, a method bound to `target` (whose private fields a proxy cannot reach). */
function bound(target: object, property: string | symbol, receiver: unknown): unknown {
  const value: unknown = Reflect.get(target, property, receiver);
  return typeof value === "function" ? value.bind(target) : value;
}

/** A file system that counts the handles open right now. */
function countingHandles(inner: FileSystem): { fs: FileSystem; open: () => number } {
  let open = 0;
  const fs = new Proxy(inner, {
    get(target, property, receiver) {
      if (property !== "open") return bound(target, property, receiver);
      return async (path: string, mode: OpenMode): Promise<FileHandle> => {
        const handle = await target.open(path, mode);
        open++;
        let closed = false;
        return new Proxy(handle, {
          get(h, p, r) {
            if (p !== "close") return bound(h, p, r);
            return async () => {
              if (!closed) open--;
              closed = true;
              await h.close();
            };
          },
        });
      };
    },
  });
  return { fs, open: () => open };
}

describe("a node whose start fails", () => {
  it("closes its WAL, its state store and its transport", async () => {
    const clock = new SimClock(3);
    clock.start();
    try {
      const disk = { after: (delayMs: number, run: () => void) => clock.after(delayMs, run, "disk") };
      const { fs, open } = countingHandles(new SimFileSystem(new Prng(3), disk).process());
      const store = new MemoryStateStore({ scheduler: disk });
      let storeClosed = false;
      const closeStore = store.close.bind(store);
      store.close = async () => {
        storeClosed = true;
        await closeStore();
      };
      const network = new MemoryNetwork<NodeWireMessage>({
        env: {
          nowMs: () => clock.nowMs,
          setTimer: (delayMs, callback) => ({ cancel: clock.env().after(Math.max(1, delayMs), callback) }),
          below: (bound) => bound - 1,
        },
        codec: nodeWireCodec,
      });
      const inner = network.transport(nodeId(1));
      let transportClosed = false;
      const transport: Transport<NodeWireMessage> = new Proxy(inner, {
        get(target, property, receiver) {
          if (property === "start") {
            return () =>
              Promise.reject(new Error("listen EADDRINUSE: address already in use 127.0.0.1:7001"));
          }
          if (property === "close") {
            return async () => {
              transportClosed = true;
              await target.close();
            };
          }
          return bound(target, property, receiver);
        },
      });
      await assert.rejects(
        CairnNode.open({
          fs,
          dataDir: "/",
          env: clock.env(),
          transport,
          stateStore: store,
          membership: {
            clusterId: "start-fails",
            id: 1,
            name: "n1",
            bootstrapped: true,
            initialVoters: [1],
            members: [{ id: 1, name: "n1", peerAddress: "memory:1" }],
          },
          clientAddresses: { httpUrl: "http://n1.start-fails" },
          peerAddress: "memory:1",
        }),
        /EADDRINUSE/,
      );
      assert.equal(open(), 0, "every file handle the start opened is closed");
      assert.ok(storeClosed, "the state store is closed");
      assert.ok(transportClosed, "the transport is closed");
    } finally {
      await clock.pause();
    }
  });
});
