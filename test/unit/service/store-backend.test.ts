// The store backend: the service state machine over the storage layer's StateStore must read
// exactly like the in-memory backend, including range scans longer than one store page, and a
// batch committed twice (a replay after a crash) must change nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type GroupId, groupId, logIndex } from "../../../src/raft/index.js";
import { encodeEnvelope } from "../../../src/service/command.js";
import { getKv, kvRevision, rangeKv } from "../../../src/service/kv/index.js";
import { MemoryBackend, ServiceStateMachine, StoreBackend } from "../../../src/service/state-machine.js";
import { MemoryStateStore } from "../../../src/storage/memory-state-store.js";
import type { StateStore } from "../../../src/storage/state-store.js";
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

/** A store that delegates to a memory store but lets the test decide how batch writes end. */
class ControlledStore implements StateStore {
  readonly inner = new MemoryStateStore();
  readonly release: (() => void)[] = [];
  mode: "hold" | "fail" = "hold";
  appliedIndex(group: GroupId) {
    return this.inner.appliedIndex(group);
  }
  isRestoring(group: GroupId) {
    return this.inner.isRestoring(group);
  }
  get(...args: Parameters<StateStore["get"]>) {
    return this.inner.get(...args);
  }
  range(...args: Parameters<StateStore["range"]>) {
    return this.inner.range(...args);
  }
  applyBatch(...args: Parameters<StateStore["applyBatch"]>): Promise<boolean> {
    if (this.mode === "fail") return Promise.reject(new Error("EIO"));
    return new Promise((resolve, reject) => {
      this.release.push(() => {
        this.inner.applyBatch(...args).then(resolve, reject);
      });
    });
  }
  exportGroup(...args: Parameters<StateStore["exportGroup"]>) {
    return this.inner.exportGroup(...args);
  }
  restoreGroup(...args: Parameters<StateStore["restoreGroup"]>) {
    return this.inner.restoreGroup(...args);
  }
  close() {
    return this.inner.close();
  }
}

describe("StoreBackend pending writes", () => {
  it("serves a round's writes before the store has them, and the store's afterwards", async () => {
    const store = new ControlledStore();
    const backend = new StoreBackend(store, groupId(1));
    await new ServiceStateMachine(backend).apply(entries(5, 11));
    assert.equal(store.appliedIndex(groupId(1)), 0, "the store has not written the round yet");
    assert.equal(backend.appliedIndex(), 5);
    const key = [...backend.reader.range("kv", new Uint8Array(0), undefined, 10)][0]?.[0];
    assert.ok(key !== undefined, "the pending writes are visible to reads");
    const before = getKv(backend.reader, key);
    assert.ok(before !== undefined);
    for (const r of store.release) r();
    await backend.settle();
    assert.equal(store.appliedIndex(groupId(1)), 5);
    assert.deepEqual(getKv(backend.reader, key), before);
  });

  it("makes the next commit fail once a store write failed", async () => {
    const store = new ControlledStore();
    store.mode = "fail";
    const backend = new StoreBackend(store, groupId(1));
    await backend.commit([], 1);
    await assert.rejects(backend.settle(), /EIO/);
    await assert.rejects(backend.commit([], 2), /EIO/);
  });
});
