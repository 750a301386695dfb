// The snapshot stream between nodes (src/node/snapshot-stream.ts) must give the follower the
// leader's chunks back whatever pieces the transport cuts the bytes into: checked by feeding every
// encoding byte by byte, in random pieces, and truncated or with an oversized length.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeSnapshotStream, encodeSnapshotStream } from "../../../src/node/snapshot-stream.js";
import { Prng } from "../../../src/util/prng.js";

async function* from<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

/** The encoded bytes of `chunks`, as one array. */
async function encodedBytes(chunks: readonly Uint8Array[]): Promise<Uint8Array> {
  const parts = await collect(encodeSnapshotStream(from(chunks)));
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

/** `bytes` cut into pieces of random sizes (including empty ones). */
function cut(bytes: Uint8Array, prng: Prng): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = prng.range(0, 9);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

describe("snapshot stream between nodes", () => {
  const chunks = [
    Uint8Array.of(1, 2, 3),
    new Uint8Array(0),
    Uint8Array.from({ length: 300 }, (_, i) => i & 0xff),
  ];

  it("gives back the sender's chunks when the bytes arrive one at a time", async () => {
    const bytes = await encodedBytes(chunks);
    const pieces = [...bytes].map((b) => Uint8Array.of(b));
    assert.deepEqual(await collect(decodeSnapshotStream(from(pieces))), chunks);
  });

  it("gives back the sender's chunks from random pieces, for random chunk lists", async () => {
    const prng = new Prng(7);
    for (let round = 0; round < 200; round++) {
      const list = Array.from({ length: prng.range(0, 5) }, () =>
        Uint8Array.from({ length: prng.range(0, 40) }, () => prng.below(256)),
      );
      const bytes = await encodedBytes(list);
      assert.deepEqual(await collect(decodeSnapshotStream(from(cut(bytes, prng)))), list);
    }
  });

  it("refuses a stream that ends inside a chunk or its length", async () => {
    const bytes = await encodedBytes(chunks);
    for (const end of [1, 3, 5, bytes.length - 1]) {
      await assert.rejects(collect(decodeSnapshotStream(from([bytes.subarray(0, end)]))), {
        code: "ERR_SNAPSHOT_CORRUPT",
      });
    }
  });

  it("refuses a declared chunk above the limit before buffering it", async () => {
    const bytes = await encodedBytes([new Uint8Array(100)]);
    await assert.rejects(collect(decodeSnapshotStream(from([bytes]), 99)), { code: "ERR_SNAPSHOT_CORRUPT" });
  });
});
