// Stream and group bookkeeping is stored in a versioned binary form; the previous releases stored
// JSON. These tests round-trip random bookkeeping through the codecs, and run the same commands on
// a state whose bookkeeping is binary and on a copy rewritten as the previous release left it
// (JSON): both answer alike, end alike, and every record written again is binary.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryState } from "../../../../src/service/state.js";
import {
  type GroupMeta,
  getStreamMeta,
  listGroups,
  listStreams,
  type StreamCommand,
  type StreamMeta,
} from "../../../../src/service/streams/index.js";
import { groupMetaCodec, streamMetaCodec } from "../../../../src/service/streams/stream-layout.js";
import { utf8 } from "../../../../src/util/bytes.js";
import { Prng } from "../../../../src/util/prng.js";
import { append, config, copyState, run } from "./helpers.js";

const T = 1_700_000_000_000;

/** A fresh copy of `bytes`, so the codec's cache of decoded values cannot answer for it. */
const copyOf = (bytes: Uint8Array) => Uint8Array.from(bytes);

function randomStreamMeta(prng: Prng): StreamMeta {
  const big = () => (prng.chance(1, 4) ? Number.MAX_SAFE_INTEGER - prng.below(3) : prng.below(1_000_000));
  return {
    id: big(),
    name: prng.chance(1, 3) ? `stream-é-${prng.below(100)}` : "s",
    config: config({
      maxMessages: big(),
      maxBytes: big(),
      maxAgeMs: big(),
      discard: prng.chance(1, 2) ? "old" : "new",
      messageBytesMax: big(),
      dedupeWindowMs: big(),
    }),
    createdMs: big(),
    firstSeq: big(),
    lastSeq: big(),
    bytes: big(),
    lastIdMs: big(),
    lastIdN: big(),
    ...(prng.chance(1, 2) ? { holes: big() } : {}),
    ...(prng.chance(1, 2) ? { maxDeletedIdMs: big(), maxDeletedIdN: big() } : {}),
    ...(prng.chance(1, 2) ? { entriesAddedDelta: (prng.chance(1, 2) ? -1 : 1) * prng.below(1 << 30) } : {}),
  };
}

function randomGroupMeta(prng: Prng): GroupMeta {
  const n = () => prng.below(1_000_000);
  const consumers = Array.from({ length: prng.below(5) }, (_, i) =>
    prng.chance(1, 2) ? ([`c${i}`, n(), n()] as const) : ([`c${i}`, n(), n(), n(), n()] as const),
  );
  return {
    id: n(),
    name: `g${n()}`,
    config: { ackWaitMs: n() + 1, maxDeliveries: n(), deadLetterStream: `s.g${n()}.dlq`, maxAckPending: n() },
    createdMs: T + n(),
    nextSeq: n(),
    pending: n(),
    delivered: n(),
    acked: n(),
    deadLettered: n(),
    ...(prng.chance(1, 2) ? { redelivered: n() } : {}),
    ...(prng.chance(1, 2) ? { deadLettersLost: n() } : {}),
    ...(prng.chance(1, 2) ? { consumers } : {}),
  };
}

/** Rewrites every stream's and group's bookkeeping as JSON, as the previous release stored it. */
function asPreviousRelease(state: MemoryState): MemoryState {
  const old = copyState(state);
  for (const space of ["stream-meta", "consumer-group"] as const) {
    for (const [key, value] of [...old.range(space, new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)]) {
      const codec = space === "stream-meta" ? streamMetaCodec : groupMetaCodec;
      old.put(space, key, utf8(JSON.stringify(codec.decode(copyOf(value)))));
    }
  }
  return old;
}

/** Every stream's and group's bookkeeping, decoded. */
function bookkeeping(state: MemoryState): object[] {
  return listStreams(state, 100).flatMap((meta) => [meta, ...listGroups(state, meta)]);
}

describe("stream and group bookkeeping codecs", () => {
  it("round-trip random bookkeeping, optional fields kept absent or present as written", () => {
    const prng = new Prng(18);
    for (let i = 0; i < 500; i++) {
      const stream = randomStreamMeta(prng);
      const streamBytes = streamMetaCodec.encode(stream);
      assert.equal(streamBytes[0], 1, "the format's version comes first");
      assert.deepEqual(streamMetaCodec.decode(copyOf(streamBytes)), stream);
      const group = randomGroupMeta(prng);
      assert.deepEqual(groupMetaCodec.decode(copyOf(groupMetaCodec.encode(group))), group);
    }
  });

  it("is smaller than the JSON it replaces", () => {
    const prng = new Prng(7);
    const stream = randomStreamMeta(prng);
    assert.ok(streamMetaCodec.encode(stream).length < utf8(JSON.stringify(stream)).length / 2);
  });

  it("reads the previous release's JSON bookkeeping and writes binary from then on", () => {
    const state = new MemoryState();
    run(state, { type: "create", name: "s", config: config({ maxMessages: 4 }) }, T);
    for (let i = 1; i <= 6; i++) run(state, append("s", `m${i}`, { msgId: `id${i}` }), T + i);
    const groupConfig = { ackWaitMs: 1000, maxDeliveries: 2, deadLetterStream: "s.g.dlq", maxAckPending: 10 };
    run(
      state,
      { type: "group-create", stream: "s", group: "g", startAt: { kind: "first" }, config: groupConfig },
      T + 10,
    );
    run(state, { type: "fetch", stream: "s", group: "g", consumer: "c1", max: 2 }, T + 11);
    run(state, { type: "message-delete", name: "s", seqs: [5] }, T + 12);
    const old = asPreviousRelease(state);
    assert.deepEqual(bookkeeping(old), bookkeeping(state));
    const next: StreamCommand[] = [
      append("s", "m7", { msgId: "id6" }),
      append("s", "m8", { msgId: "id8" }),
      { type: "fetch", stream: "s", group: "g", consumer: "c2", max: 5 },
      { type: "settle", stream: "s", group: "g", action: "ack", seqs: [3, 4], delayMs: 0 },
      { type: "fetch", stream: "s", group: "g", consumer: "c1", max: 5 },
      { type: "fetch", stream: "s", group: "g", consumer: "c1", max: 5 },
    ];
    next.forEach((command, i) => {
      const tsMs = T + 2000 * (i + 1);
      assert.deepEqual(run(old, command, tsMs), run(state, command, tsMs), `command ${i}`);
    });
    assert.deepEqual(bookkeeping(old), bookkeeping(state));
    const stream = old.get("stream-meta", utf8("s"));
    assert.equal(stream?.[0], 1, "the stream's bookkeeping was written again, in binary");
    const meta = getStreamMeta(old, "s");
    assert.ok(meta !== undefined);
    for (const [, value] of old.range("consumer-group", new Uint8Array(0), undefined, 10))
      assert.equal(value[0], 1);
  });
});
