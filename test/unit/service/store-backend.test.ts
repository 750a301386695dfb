// The store backend: the service state machine over the storage layer's StateStore must read
// exactly like the in-memory backend, including range scans longer than one store page, and a
// batch committed twice (a replay after a crash) must change nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { groupId, logIndex } from "../../../src/raft/index.js";
import { encodeEnvelope } from "../../../src/service/command.js";
import { getKv, kvRevision, rangeKv } from "../../../src/service/kv/index.js";
import { MemoryBackend, ServiceStateMachine, StoreBackend } from "../../../src/service/state-machine.js";
import { MemoryStateStore } from "../../../src/storage/memory-state-store.js";
import { utf8 } from "../../../src/util/bytes.js";
import { Prng } from "../../../src/util/prng.js";

function entries(count: number, seed: number) {
  const prng = new Prng(seed);
  return Array.from({ length: count }, (_, i) => {
    const key = utf8(`k${prng.below(1500).toString().padStart(4, "0")}`);
    const command =
      prng.below(5) === 0
        ? ({ type: "delete", key } as const)
        : ({ type: "put", key, value: utf8(`v${i}`) } as const);
    return {
      term: 1 as never,
      index: logIndex(i + 1),
      kind: "normal" as const,
      data: encodeEnvelope({ tsMs: 1000 + i, command: { service: "kv", command } }),
    };
  });
}

describe("StoreBackend", () => {
  it("reads like the memory backend, across multi-page scans", async () => {
    const store = new MemoryStateStore();
    const onStore = new StoreBackend(store, groupId(1));
    const inMemory = new MemoryBackend();
    const log = entries(3000, 7);
    for (let i = 0; i < log.length; i += 100) {
      const batch = log.slice(i, i + 100);
      await new ServiceStateMachine(onStore).apply(batch);
      await new ServiceStateMachine(inMemory).apply(batch);
    }
    assert.equal(onStore.appliedIndex(), 3000);
    assert.equal(kvRevision(onStore.reader), kvRevision(inMemory.reader));
    const all = (reader: typeof onStore.reader) => rangeKv(reader, { prefix: utf8("k"), limit: 1000 });
    assert.deepEqual(all(onStore.reader), all(inMemory.reader));
    const full = [...onStore.reader.range("kv", new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)];
    assert.ok(full.length > 1000, `scan crossed a page: ${full.length} keys`);
    assert.equal(full.length, [...inMemory.reader.range("kv", new Uint8Array(0), undefined, 1e9)].length);
  });

  it("ignores a batch applied again after a crash", async () => {
    const store = new MemoryStateStore();
    const backend = new StoreBackend(store, groupId(1));
    const log = entries(10, 3);
    await new ServiceStateMachine(backend).apply(log);
    const before = getKv(backend.reader, utf8("k0000"));
    const revision = kvRevision(backend.reader);
    await new ServiceStateMachine(backend).apply(log);
    assert.equal(kvRevision(backend.reader), revision);
    assert.deepEqual(getKv(backend.reader, utf8("k0000")), before);
  });
});
