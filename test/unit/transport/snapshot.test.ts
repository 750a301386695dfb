// Snapshot streaming between two TLS transports on 127.0.0.1: a few MiB arrive intact, the sender is
// paced by the receiver's consumer (bounded window), a broken connection is resumed where the
// receiver stands rather than restarted, and refusals and aborts reach the sender as typed errors.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { groupId } from "../../../src/raft/types.js";
import { FaultProxy } from "../../../src/transport/fault-proxy.js";
import type { TransportSettings } from "../../../src/transport/settings.js";
import type { IncomingSnapshot } from "../../../src/transport/transport.js";
import { crc32 } from "../../../src/util/crc.js";
import { Prng } from "../../../src/util/prng.js";
import { connectAll, makeNode, type Node, n, waitFor } from "./helpers.js";

const settings = {
  snapshotChunkBytesMax: 64 * 1024,
  snapshotWindowChunksMax: 4,
  reconnectBackoffBaseMs: 10,
  reconnectBackoffMaxMs: 50,
};
const open: Node[] = [];
const proxies: FaultProxy[] = [];
async function started(id: number, extra: Partial<typeof settings & TransportSettings> = {}): Promise<Node> {
  const node = await makeNode(id, { settings: { ...settings, ...extra } });
  open.push(node);
  await node.transport.start();
  return node;
}
after(async () => {
  for (const node of open) await node.transport.close();
  for (const proxy of proxies) await proxy.close();
});

/** Deterministic pseudo-random bytes. */
function bytes(length: number, seed: number): Uint8Array {
  const prng = new Prng(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = prng.below(256);
  return out;
}

/** Yields `data` in pieces of assorted sizes (some bigger than a chunk), counting what was pulled. */
async function* source(data: Uint8Array, pulled: { bytes: number }): AsyncGenerator<Uint8Array> {
  const prng = new Prng(7);
  let at = 0;
  while (at < data.length) {
    const size = Math.min(data.length - at, 1 + prng.below(150 * 1024));
    pulled.bytes += size;
    yield data.subarray(at, at + size);
    at += size;
  }
}

/** Consumes an incoming snapshot fully; `onChunk` may slow it down or inject faults. */
async function collect(
  snapshot: IncomingSnapshot,
  onChunk?: (received: number) => Promise<void>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let received = 0;
  for await (const chunk of snapshot.chunks) {
    parts.push(chunk.slice());
    received += chunk.length;
    await onChunk?.(received);
  }
  return Buffer.concat(parts);
}

describe("snapshot streaming", () => {
  it("streams a few MiB intact, with its meta and group", async () => {
    const [a, b] = [await started(1), await started(2)];
    connectAll([a, b]);
    const data = bytes(3 * 1024 * 1024 + 12345, 1);
    const done: Promise<{ meta: string; group: number; data: Uint8Array }>[] = [];
    b.transport.onSnapshot((s) => {
      done.push(
        collect(s).then((d) => ({ meta: new TextDecoder().decode(s.meta), group: s.group, data: d })),
      );
    });
    await a.transport.sendSnapshot(
      n(2),
      groupId(5),
      new TextEncoder().encode("index=42"),
      source(data, { bytes: 0 }),
    );
    assert.equal(done.length, 1);
    const got = await done[0];
    assert.equal(got?.meta, "index=42");
    assert.equal(got?.group, 5);
    assert.equal(got?.data.length, data.length);
    assert.equal(crc32(got?.data ?? new Uint8Array(0)), crc32(data));
  });

  it("paces the sender by the receiver's consumer: at most a window of chunks ahead", async () => {
    const [a, b] = [await started(1), await started(2)];
    connectAll([a, b]);
    const data = bytes(2 * 1024 * 1024, 2);
    const pulled = { bytes: 0 };
    let incoming: IncomingSnapshot | undefined;
    b.transport.onSnapshot((s) => {
      incoming = s;
    });
    const sent = a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source(data, pulled));
    await waitFor("the transfer to start", () => incoming !== undefined);
    // Nobody consumes yet: the sender fills its window and then must stop pulling from the source.
    const windowBytes = settings.snapshotChunkBytesMax * settings.snapshotWindowChunksMax;
    await waitFor("window full", () => pulled.bytes >= windowBytes - settings.snapshotChunkBytesMax);
    // A claim that something does not happen: give an overreaching sender some I/O turns to pull more.
    // Nothing afterwards depends on anything having happened meanwhile.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    // One source piece can exceed a chunk (it is split), so allow one piece beyond the window.
    assert.ok(pulled.bytes < windowBytes + 150 * 1024, `pulled ${pulled.bytes} bytes with nothing consumed`);
    assert.ok(incoming);
    const got = await collect(incoming);
    await sent;
    assert.equal(crc32(got), crc32(data));
  });

  it("resumes after the connection breaks, without restarting the stream", async () => {
    const [a, b] = [await started(1), await started(2)];
    const proxy = new FaultProxy({
      listen: { host: "127.0.0.1", port: 0 },
      target: b.transport.listenAddress ?? { host: "", port: 0 },
    });
    proxies.push(proxy);
    const proxyAddress = await proxy.start();
    a.transport.setPeers(new Map([[n(2), proxyAddress]]));
    b.transport.setPeers(new Map([[n(1), a.transport.listenAddress ?? { host: "", port: 0 }]]));
    const data = bytes(3 * 1024 * 1024, 3);
    const handed: Promise<Uint8Array>[] = [];
    let severed = 0;
    b.transport.onSnapshot((s) => {
      handed.push(
        collect(s, async (received) => {
          // Cut the network twice mid-stream, while the consumer is busy.
          if ((received > 700 * 1024 && severed === 0) || (received > 2 * 1024 * 1024 && severed === 1)) {
            severed++;
            proxy.sever();
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }),
      );
    });
    const acceptedBefore = proxy.stats.connectionsAccepted;
    await a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array([9]), source(data, { bytes: 0 }));
    assert.equal(severed, 2);
    assert.equal(handed.length, 1, "the receiver saw one transfer, resumed, not a second one");
    const got = await handed[0];
    assert.equal(got?.length, data.length);
    assert.equal(crc32(got ?? new Uint8Array(0)), crc32(data));
    // The snapshot connection was dialled three times: the first and two resumes.
    const snapshotDials = b.events.filter(
      (e) => e.kind === "inbound-accepted" && e.purpose === "snapshot",
    ).length;
    assert.equal(snapshotDials, 3);
    assert.ok(proxy.stats.connectionsAccepted - acceptedBefore >= 3);
  });

  it("a receiver that aborts, or has no handler, makes the sender fail with ERR_SNAPSHOT_ABORTED", async () => {
    const [a, b] = [await started(1), await started(2)];
    connectAll([a, b]);
    const data = bytes(512 * 1024, 4);
    await assert.rejects(
      a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source(data, { bytes: 0 })),
      { code: "ERR_SNAPSHOT_ABORTED" },
    );
    const consumerErrors: unknown[] = [];
    b.transport.onSnapshot((s) => {
      void (async () => {
        try {
          for await (const _ of s.chunks) {
            s.abort("disk full");
          }
        } catch (error) {
          consumerErrors.push(error);
        }
      })();
    });
    await assert.rejects(
      a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source(data, { bytes: 0 })),
      (error: { code?: string; message?: string }) =>
        error.code === "ERR_SNAPSHOT_ABORTED" && /disk full/.test(error.message ?? ""),
    );
    await waitFor("consumer sees the abort", () => consumerErrors.length === 1);
  });

  it("sends an empty snapshot, and fails without retrying when the source itself fails", async () => {
    const [a, b] = [await started(1), await started(2)];
    connectAll([a, b]);
    const results: (number | string)[] = [];
    b.transport.onSnapshot((s) => {
      collect(s).then(
        (data) => results.push(data.length),
        (error: { code?: string }) => results.push(error.code ?? "?"),
      );
    });
    async function* empty(): AsyncGenerator<Uint8Array> {}
    await a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), empty());
    await waitFor("empty snapshot consumed", () => results.length === 1);
    assert.deepEqual(results, [0]);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(100);
      throw new Error("disk read failed");
    }
    await assert.rejects(
      a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), failing()),
      (error: { code?: string; message?: string }) =>
        error.code === "ERR_SNAPSHOT_ABORTED" && /disk read failed/.test(error.message ?? ""),
    );
    await waitFor("receiver told", () => results.length === 2);
    assert.equal(results[1], "ERR_SNAPSHOT_ABORTED");
    const snapshotDials = b.events.filter((e) => e.kind === "inbound-accepted" && e.purpose === "snapshot");
    assert.equal(snapshotDials.length, 2, "one connection per transfer, no retry of a broken source");
  });

  it("refuses meta above snapshotMetaBytesMax and transfers beyond snapshotTransfersMax", async () => {
    const a = await started(1, { snapshotMetaBytesMax: 1024 });
    const b = await started(2, { snapshotTransfersMax: 1 });
    connectAll([a, b]);
    await assert.rejects(
      a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(1025), source(bytes(10, 6), { bytes: 0 })),
      { code: "ERR_FRAME_TOO_LARGE" },
    );
    const incoming: IncomingSnapshot[] = [];
    b.transport.onSnapshot((s) => incoming.push(s));
    const data = bytes(300 * 1024, 6);
    const first = a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source(data, { bytes: 0 }));
    await waitFor("first transfer", () => incoming.length === 1);
    await assert.rejects(
      a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source(data, { bytes: 0 })),
      (error: { code?: string; message?: string }) =>
        error.code === "ERR_SNAPSHOT_ABORTED" && /too many snapshot transfers/.test(error.message ?? ""),
    );
    const only = incoming[0];
    assert.ok(only);
    assert.equal(crc32(await collect(only)), crc32(data));
    await first;
  });

  it("the receiver gives up on a sender that does not resume within snapshotResumeTimeoutMs", async () => {
    const a = await started(1, {
      snapshotResumeAttemptsMax: 2,
      reconnectBackoffBaseMs: 100,
      reconnectBackoffMaxMs: 100,
    });
    const b = await started(2, { snapshotResumeTimeoutMs: 150 });
    const proxy = new FaultProxy({
      listen: { host: "127.0.0.1", port: 0 },
      target: b.transport.listenAddress ?? { host: "", port: 0 },
    });
    proxies.push(proxy);
    a.transport.setPeers(new Map([[n(2), await proxy.start()]]));
    b.transport.setPeers(new Map([[n(1), a.transport.listenAddress ?? { host: "", port: 0 }]]));
    let consumerError: unknown;
    b.transport.onSnapshot((s) => {
      void collect(s, async (received) => {
        if (received > 100 * 1024) proxy.drop();
      }).catch((error: unknown) => {
        consumerError = error;
      });
    });
    await assert.rejects(
      a.transport.sendSnapshot(
        n(2),
        groupId(1),
        new Uint8Array(0),
        source(bytes(1024 * 1024, 7), { bytes: 0 }),
      ),
      { code: "ERR_SNAPSHOT_ABORTED" },
    );
    await waitFor("receiver gives up", () => consumerError !== undefined);
    assert.equal((consumerError as { code?: string }).code, "ERR_SNAPSHOT_ABORTED");
  });

  it("a receiver that neither reads nor aborts stalls the sender only until snapshotStallTimeoutMs", async () => {
    const a = await started(1, { snapshotStallTimeoutMs: 150, snapshotResumeAttemptsMax: 1 });
    const b = await started(2);
    connectAll([a, b]);
    const ignored: IncomingSnapshot[] = [];
    b.transport.onSnapshot((s) => ignored.push(s));
    await assert.rejects(
      a.transport.sendSnapshot(
        n(2),
        groupId(1),
        new Uint8Array(0),
        source(bytes(1024 * 1024, 8), { bytes: 0 }),
      ),
      (error: { code?: string; cause?: { message?: string } }) =>
        error.code === "ERR_SNAPSHOT_ABORTED" && /silent/.test(error.cause?.message ?? ""),
    );
    assert.equal(ignored.length, 1, "the resume reached the same transfer");
  });

  it("gives up with ERR_SNAPSHOT_ABORTED when the peer stays unreachable", async () => {
    const a = await started(1);
    a.transport.setPeers(new Map([[n(2), { host: "127.0.0.1", port: 1 }]]));
    await assert.rejects(
      a.transport.sendSnapshot(n(2), groupId(1), new Uint8Array(0), source(bytes(10, 5), { bytes: 0 })),
      { code: "ERR_SNAPSHOT_ABORTED" },
    );
  });
});
