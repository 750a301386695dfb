// The store backend: the service state machine over the storage layer's StateStore must read
// exactly like the in-memory backend, including range scans longer than one store page, and a
// batch committed twice (a replay after a crash) must change nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type GroupId, groupId, logIndex } from "../../../src/raft/index.js";
import { encodeEnvelope } from "../../../src/service/command.js";
import { getKv, kvRevision, rangeKv } from "../../../src/service/kv/index.js";
import { spaceKinds } from "../../../src/service/state.js";
import { MemoryBackend, ServiceStateMachine } from "../../../src/service/state-machine.js";
import { StoreBackend } from "../../../src/service/store-backend.js";
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
  durableAppliedIndex(group: GroupId) {
    return this.inner.durableAppliedIndex(group);
  }
  get(...args: Parameters<StateStore["get"]>) {
    return this.inner.get(...args);
  }
  range(...args: Parameters<StateStore["range"]>) {
    return this.inner.range(...args);
  }
  readView(...args: Parameters<StateStore["readView"]>) {
    return this.inner.readView(...args);
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

/** Waits (a turn of the event loop at a time) until `done` holds. */
async function waitFor(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setImmediate(resolve));
}

/** A timer the test fires by hand. */
class ManualTimer {
  readonly due: (() => void)[] = [];
  readonly after = (_delayMs: number, run: () => void) => {
    this.due.push(run);
    return () => {
      const i = this.due.indexOf(run);
      if (i >= 0) this.due.splice(i, 1);
    };
  };
  fire(): void {
    for (const run of this.due.splice(0)) run();
  }
}

/** A memory store that counts transactions and records what each wrote. */
class CountingStore extends MemoryStateStore {
  readonly batches: { appliedIndex: number; keys: string[] }[] = [];
  override applyBatch(...args: Parameters<StateStore["applyBatch"]>): Promise<boolean> {
    const [, appliedIndex, effects] = args;
    this.batches.push({
      appliedIndex,
      keys: effects.map(
        (e) => `${e.kind}:${new TextDecoder().decode(e.op === "delete-range" ? e.start : e.key)}`,
      ),
    });
    return super.applyBatch(...args);
  }
  gets = 0;
  override get(...args: Parameters<StateStore["get"]>) {
    this.gets++;
    return super.get(...args);
  }
  ranges = 0;
  override range(...args: Parameters<StateStore["range"]>) {
    this.ranges++;
    return super.range(...args);
  }
}

const put = (space: "kv" | "kv-ttl", key: string, value: string) => ({
  space,
  key: utf8(key),
  value: utf8(value),
});

describe("StoreBackend batched writes", () => {
  it("writes the rounds of one interval in one transaction, with the newest value of each key", async () => {
    const store = new CountingStore();
    const timer = new ManualTimer();
    const backend = new StoreBackend(store, groupId(1), { flushIntervalMs: 50, after: timer.after });
    await backend.commit([put("kv", "a", "1"), put("kv", "b", "1")], 1);
    await backend.commit([put("kv", "a", "2")], 2);
    await backend.commit([{ space: "kv", key: utf8("b"), value: undefined }], 3);
    assert.equal(store.batches.length, 0, "nothing reaches the store before the interval ends");
    assert.deepEqual(backend.reader.get("kv", utf8("a")), utf8("2"));
    assert.equal(backend.reader.get("kv", utf8("b")), undefined);
    timer.fire();
    await backend.settle();
    assert.deepEqual(store.batches, [
      { appliedIndex: 3, keys: [`${spaceKinds.kv}:a`, `${spaceKinds.kv}:b`] },
    ]);
    assert.deepEqual(store.get(groupId(1), spaceKinds.kv, utf8("a")), utf8("2"));
    assert.equal(store.get(groupId(1), spaceKinds.kv, utf8("b")), undefined);
    assert.equal(store.appliedIndex(groupId(1)), 3);
  });

  it("starts a write once pendingKeysMax keys wait, and holds the next round while it runs", async () => {
    const store = new ControlledStore();
    const timer = new ManualTimer();
    const backend = new StoreBackend(store, groupId(1), {
      flushIntervalMs: 50,
      pendingKeysMax: 3,
      after: timer.after,
    });
    await backend.commit([put("kv", "a", "1"), put("kv", "b", "1")], 1);
    assert.equal(store.release.length, 0, "below the limit: waits for the interval");
    await backend.commit([put("kv", "c", "1")], 2);
    assert.equal(store.release.length, 1, "at the limit: a write started without the timer");
    let third = false;
    const round = backend
      .commit([put("kv", "d", "1"), put("kv", "e", "1"), put("kv", "f", "1")], 3)
      .then(() => {
        third = true;
      });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(third, false, "a round over the limit waits for the running write");
    for (const r of store.release.splice(0)) r();
    await round;
    assert.equal(third, true);
    assert.equal(store.release.length, 1, "the waiting keys went into the next write");
    for (const r of store.release.splice(0)) r();
    await backend.settle();
    assert.equal(store.appliedIndex(groupId(1)), 3);
  });

  it("answers a range that ends below a space's first key without reading the store", async () => {
    const store = new CountingStore();
    const backend = new StoreBackend(store, groupId(1));
    await backend.commit([put("kv-ttl", "m", ""), put("kv-ttl", "p", "")], 1);
    const keys = (start: string, end: string) =>
      [...backend.reader.range("kv-ttl", utf8(start), utf8(end), 10)].map(([k]) =>
        new TextDecoder().decode(k),
      );
    assert.deepEqual(keys("a", "m"), []);
    const before = store.ranges;
    assert.deepEqual(keys("a", "c"), []);
    assert.equal(store.ranges, before, "known to end below the first key: no store read");
    assert.deepEqual(keys("a", "n"), ["m"]);
    // A smaller key, then deleting it, then deleting the first key: answers stay right.
    await backend.commit([put("kv-ttl", "b", "")], 2);
    assert.deepEqual(keys("a", "c"), ["b"]);
    await backend.commit([{ space: "kv-ttl", key: utf8("b"), value: undefined }], 3);
    assert.deepEqual(keys("a", "c"), []);
    await backend.commit([{ space: "kv-ttl", key: utf8("m"), value: undefined }], 4);
    assert.deepEqual(keys("a", "o"), []);
    assert.deepEqual(keys("a", "q"), ["p"]);
    // After settle a snapshot may replace the store's data: its keys are seen.
    await backend.settle();
    await store.applyBatch(groupId(1), logIndex(10), [
      { op: "put", kind: spaceKinds["kv-ttl"], key: utf8("a"), value: utf8("") },
    ]);
    assert.deepEqual(keys("a", "c"), ["a"]);
  });

  it("serves the values of recently used keys from memory, at most cachedKeysMax of them", async () => {
    const store = new CountingStore();
    await store.applyBatch(
      groupId(1),
      logIndex(1),
      ["a", "b", "c"].map((k) => ({ op: "put" as const, kind: spaceKinds.kv, key: utf8(k), value: utf8(k) })),
    );
    const backend = new StoreBackend(store, groupId(1), { cachedKeysMax: 2 });
    const read = (k: string) => new TextDecoder().decode(backend.reader.get("kv", utf8(k)));
    assert.equal(read("a"), "a");
    assert.equal(read("a"), "a");
    assert.equal(store.gets, 1, "the second read came from memory");
    read("b");
    read("c");
    assert.equal(store.gets, 3);
    read("a");
    assert.equal(store.gets, 4, "a was the oldest of three keys: it had left the cache");
    // A written key is served from memory once its store write is done.
    await backend.commit([put("kv", "b", "b2")], 2);
    await waitFor(() => store.appliedIndex(groupId(1)) === 2);
    const before = store.gets;
    assert.equal(read("b"), "b2");
    assert.equal(store.gets, before);
    // After settle, a snapshot may replace the store's data: reads go to the store.
    await backend.settle();
    await store.applyBatch(groupId(1), logIndex(10), [
      { op: "put", kind: spaceKinds.kv, key: utf8("b"), value: utf8("b3") },
    ]);
    assert.equal(read("b"), "b3");
  });
});
