// One contract suite run against both state stores (lmdb on a temp directory, and the in-memory twin
// the simulator uses): atomic, idempotent batches guarded by the applied index; namespacing by group
// and kind; range reads; consistent chunked export and restore; bounded keys. Then each store's own
// durability: lmdb across reopen, the twin across crash() (committed survives, in flight does not)
// and, in its lmdb-like flush mode, across powerLoss() (only what a flush covered survives).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { open } from "lmdb";
import { type GroupId, type LogIndex, logIndex } from "../../../src/raft/types.js";
import {
  type Effect,
  type KeyKind,
  keyKind,
  LmdbStateStore,
  MemoryStateStore,
  type StateStore,
} from "../../../src/storage/index.js";
import {
  appliedIndexKey,
  encodeIndex,
  internalKey,
  storeMetaKind,
} from "../../../src/storage/state-store.js";
import { g1, g2, ManualScheduler } from "./helpers.js";

// Kinds are opaque bytes to the store; three of them, named for what the tests put there.
const kv = keyKind(1);
const other = keyKind(3);
const third = keyKind(2);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const put = (key: string, value: string, kind: KeyKind = kv): Effect => ({
  op: "put",
  kind,
  key: enc(key),
  value: enc(value),
});
const del = (key: string, kind: KeyKind = kv): Effect => ({ op: "delete", kind, key: enc(key) });
const i = (n: number): LogIndex => logIndex(n);

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

function dump(store: StateStore, group: GroupId, kind: KeyKind = kv): [string, string][] {
  return store.range(group, { kind, limit: 1000 }).map((p) => [dec(p.key) ?? "", dec(p.value) ?? ""]);
}

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

const implementations: [string, () => Promise<StateStore>][] = [
  ["MemoryStateStore", async () => new MemoryStateStore({ rangeLimitMax: 50, keyBytesMax: 64 })],
  [
    "MemoryStateStore (flush mode)",
    async () => new MemoryStateStore({ rangeLimitMax: 50, keyBytesMax: 64, flushDelayMs: 0 }),
  ],
  [
    "LmdbStateStore",
    async () => {
      const root = await mkdtemp(join(tmpdir(), "cairn-state-"));
      roots.push(root);
      return LmdbStateStore.open(root, { rangeLimitMax: 50, keyBytesMax: 64 });
    },
  ],
];

for (const [name, make] of implementations) {
  describe(`StateStore contract: ${name}`, () => {
    it("starts empty at applied index 0", async () => {
      const store = await make();
      assert.equal(store.appliedIndex(g1), 0);
      assert.equal(store.get(g1, kv, enc("a")), undefined);
      assert.deepEqual(store.range(g1, { kind: kv, limit: 10 }), []);
      await store.close();
    });

    it("applies a batch's effects and its applied index together", async () => {
      const store = await make();
      assert.equal(await store.applyBatch(g1, i(1), [put("a", "1"), put("b", "2")]), true);
      assert.equal(await store.applyBatch(g1, i(2), [del("a"), put("c", "3")]), true);
      assert.equal(store.appliedIndex(g1), 2);
      assert.deepEqual(dump(store, g1), [
        ["b", "2"],
        ["c", "3"],
      ]);
      await store.close();
    });

    it("ignores a batch at or below the applied index, so replaying the log is harmless", async () => {
      const store = await make();
      await store.applyBatch(g1, i(5), [put("a", "1")]);
      assert.equal(await store.applyBatch(g1, i(5), [put("a", "changed")]), false);
      assert.equal(await store.applyBatch(g1, i(3), [put("z", "old")]), false);
      assert.deepEqual(dump(store, g1), [["a", "1"]]);
      assert.equal(store.appliedIndex(g1), 5);
      await store.close();
    });

    it("keeps groups and kinds apart", async () => {
      const store = await make();
      await store.applyBatch(g1, i(1), [put("k", "kv-1"), put("k", "msg-1", other)]);
      await store.applyBatch(g2, i(7), [put("k", "kv-2")]);
      assert.equal(dec(store.get(g1, kv, enc("k"))), "kv-1");
      assert.equal(dec(store.get(g1, other, enc("k"))), "msg-1");
      assert.equal(dec(store.get(g2, kv, enc("k"))), "kv-2");
      assert.equal(store.get(g2, other, enc("k")), undefined);
      assert.deepEqual(dump(store, g1, third), []);
      assert.equal(store.appliedIndex(g1), 1);
      assert.equal(store.appliedIndex(g2), 7);
      await store.close();
    });

    it("reads ranges by prefix and by start/end in byte order, with a limit bounded by rangeLimitMax", async () => {
      const store = await make();
      const keys = ["a", "ab", "abc", "b", "b\u00ff", "c"];
      await store.applyBatch(g1, i(1), [...keys.map((k) => put(k, k)), put("a", "other kind", other)]);
      const names = (q: Parameters<StateStore["range"]>[1]): string[] =>
        store.range(g1, q).map((p) => dec(p.key) ?? "");
      assert.deepEqual(names({ kind: kv, prefix: enc("a"), limit: 10 }), ["a", "ab", "abc"]);
      assert.deepEqual(names({ kind: kv, prefix: enc("a"), limit: 2 }), ["a", "ab"]);
      assert.deepEqual(names({ kind: kv, start: enc("ab"), end: enc("b"), limit: 10 }), ["ab", "abc"]);
      assert.deepEqual(names({ kind: kv, start: enc("b"), limit: 10 }), ["b", "b\u00ff", "c"]);
      assert.deepEqual(names({ kind: kv, prefix: new Uint8Array([0x62, 0xc3, 0xbf]), limit: 10 }), [
        "b\u00ff",
      ]);
      const many = Array.from({ length: 80 }, (_, n) => put(`m${String(n).padStart(3, "0")}`, "x"));
      await store.applyBatch(g1, i(2), many);
      assert.equal(store.range(g1, { kind: kv, prefix: enc("m"), limit: 1000 }).length, 50);
      await store.close();
    });

    it("deletes a key range of one kind", async () => {
      const store = await make();
      await store.applyBatch(g1, i(1), [
        put("s1", "a"),
        put("s2", "b"),
        put("s3", "c"),
        put("s2", "keep", third),
      ]);
      await store.applyBatch(g1, i(2), [{ op: "delete-range", kind: kv, start: enc("s1"), end: enc("s3") }]);
      assert.deepEqual(dump(store, g1), [["s3", "c"]]);
      assert.equal(dec(store.get(g1, third, enc("s2"))), "keep");
      await store.close();
    });

    it("keeps a read view as of its creation while later batches change the group", async () => {
      const store = await make();
      await store.applyBatch(g1, i(1), [put("a", "1"), put("b", "2")]);
      await store.applyBatch(g2, i(1), [put("z", "g2")]);
      const view = store.readView(g1);
      await store.applyBatch(g1, i(2), [put("a", "changed"), del("b"), put("c", "3")]);
      const seen = view.range({ kind: kv, limit: 1000 }).map((p) => [dec(p.key), dec(p.value)]);
      assert.deepEqual(seen, [
        ["a", "1"],
        ["b", "2"],
      ]);
      assert.deepEqual(dump(store, g1), [
        ["a", "changed"],
        ["c", "3"],
      ]);
      assert.equal(view.range({ kind: kv, limit: 1 }).length, 1, "a view's ranges are bounded by the limit");
      view.release();
      await store.close();
    });

    it("rejects a key above keyBytesMax with ERR_TOO_LARGE", async () => {
      const store = await make();
      await assert.rejects(store.applyBatch(g1, i(1), [put("x".repeat(65), "v")]), { code: "ERR_TOO_LARGE" });
      assert.equal(store.appliedIndex(g1), 0);
      assert.throws(() => store.get(g1, kv, new Uint8Array(65)), { code: "ERR_TOO_LARGE" });
      await store.close();
    });

    it("exports a consistent cut in bounded chunks and restores it into an empty store", async () => {
      const source = await make();
      const effects = Array.from({ length: 40 }, (_, n) =>
        put(`key${String(n).padStart(2, "0")}`, `value-${n}`.repeat(3)),
      );
      await source.applyBatch(g1, i(9), effects);
      await source.applyBatch(g2, i(4), [put("other", "group")]);
      const exported = source.exportGroup(g1, 256);
      // Writes after the export began must not show up in it.
      await source.applyBatch(g1, i(10), [put("late", "x"), del("key00")]);
      const chunks = await collect(exported.chunks());
      assert.equal(exported.appliedIndex, 9);
      assert.ok(chunks.length > 3, `${chunks.length} chunks`);
      for (const c of chunks) assert.ok(c.length <= 256);
      const target = await make();
      await target.applyBatch(g1, i(100), [put("stale", "gone")]);
      await target.applyBatch(g2, i(3), [put("untouched", "yes")]);
      const restored = await target.restoreGroup(
        g1,
        (async function* () {
          yield* chunks;
        })(),
      );
      assert.equal(restored, 9);
      assert.equal(target.appliedIndex(g1), 9);
      assert.equal(target.isRestoring(g1), false);
      assert.deepEqual(
        dump(target, g1),
        effects.map((e) => [
          dec(e.op === "put" ? e.key : undefined),
          dec(e.op === "put" ? e.value : undefined),
        ]),
      );
      assert.deepEqual(dump(target, g2), [["untouched", "yes"]]);
      await source.close();
      await target.close();
    });

    it("rejects a malformed chunk with ERR_SNAPSHOT_CORRUPT and leaves the group marked as restoring", async () => {
      const store = await make();
      await assert.rejects(
        store.restoreGroup(
          g1,
          (async function* () {
            yield new Uint8Array([5, 0, 0, 0, 9, 0, 0, 0, 1]);
          })(),
        ),
        { code: "ERR_SNAPSHOT_CORRUPT" },
      );
      assert.equal(store.isRestoring(g1), true);
      await store.close();
    });
  });
}

describe("LmdbStateStore durability", () => {
  it("keeps committed batches across close and reopen", async () => {
    const root = await mkdtemp(join(tmpdir(), "cairn-state-"));
    roots.push(root);
    const store = LmdbStateStore.open(root);
    await store.applyBatch(g1, i(3), [put("a", "1")]);
    await store.close();
    const again = LmdbStateStore.open(root);
    assert.equal(again.appliedIndex(g1), 3);
    assert.equal(dec(again.get(g1, kv, enc("a"))), "1");
    await again.close();
  });
});

describe("LmdbStateStore read views", () => {
  it("ends a view that is still open when the store closes: reads fail with ERR_CLOSED", async () => {
    const root = await mkdtemp(join(tmpdir(), "cairn-state-"));
    roots.push(root);
    const store = LmdbStateStore.open(root);
    await store.applyBatch(g1, i(1), [put("a", "1")]);
    const view = store.readView(g1);
    await store.close();
    assert.throws(() => view.range({ kind: kv, limit: 10 }), { code: "ERR_CLOSED" });
    view.release();
    assert.throws(() => store.readView(g1), { code: "ERR_CLOSED" });
  });
});

describe("MemoryStateStore full disk", () => {
  it("rejects a batch past the quota with ERR_NO_SPACE, whole, keeps reads working, and applies it once space is freed", async () => {
    const store = new MemoryStateStore();
    await store.applyBatch(g1, i(1), [put("a", "1")]);
    store.setBytesMax(store.usedBytes + 10);
    await assert.rejects(store.applyBatch(g1, i(2), [put("b", "2"), put("big", "x".repeat(50))]), {
      code: "ERR_NO_SPACE",
    });
    assert.equal(store.appliedIndex(g1), 1);
    assert.deepEqual(dump(store, g1), [["a", "1"]]);
    // A batch that frees space goes through even on a full disk.
    assert.equal(await store.applyBatch(g1, i(2), [del("a")]), true);
    store.setBytesMax(Number.POSITIVE_INFINITY);
    assert.equal(await store.applyBatch(g1, i(3), [put("b", "2"), put("big", "x".repeat(50))]), true);
    assert.deepEqual(
      dump(store, g1).map(([k]) => k),
      ["b", "big"],
    );
  });
});

describe("MemoryStateStore crash semantics", () => {
  it("keeps a committed transaction and loses one still in flight", async () => {
    const scheduler = new ManualScheduler();
    const store = new MemoryStateStore({ scheduler, commitDelayMs: 1 });
    const first = store.applyBatch(g1, i(1), [put("a", "1")]);
    await scheduler.runUntilIdle();
    assert.equal(await first, true);
    let settled = false;
    void store.applyBatch(g1, i(2), [put("b", "2")]).finally(() => {
      settled = true;
    });
    assert.equal(store.get(g1, kv, enc("b")), undefined, "not visible before commit");
    store.crash();
    await scheduler.runUntilIdle();
    assert.equal(settled, false);
    assert.equal(store.appliedIndex(g1), 1);
    assert.deepEqual(dump(store, g1), [["a", "1"]]);
    // Recovery replays from appliedIndex + 1.
    await Promise.all([store.applyBatch(g1, i(2), [put("b", "2")]), scheduler.runUntilIdle()]);
    assert.deepEqual(dump(store, g1), [
      ["a", "1"],
      ["b", "2"],
    ]);
  });
});

describe("MemoryStateStore flush mode (lmdb's overlapping sync)", () => {
  const restoreChunks = async (data: number): Promise<Uint8Array[]> => {
    const source = new MemoryStateStore();
    await source.applyBatch(g1, i(data), [put("a", `snap-${data}`), put("b", `snap-${data}`)]);
    return collect(source.exportGroup(g1, 16).chunks());
  };
  const iterate = (chunks: readonly Uint8Array[]) =>
    (async function* () {
      yield* chunks;
    })();

  it("makes a commit visible at once and durable only once a flush covers it", async () => {
    const scheduler = new ManualScheduler();
    const store = new MemoryStateStore({ scheduler, commitDelayMs: 1, flushDelayMs: 5 });
    const first = store.applyBatch(g1, i(1), [put("a", "1")]);
    await scheduler.runUntilIdle();
    assert.equal(await first, true);
    assert.equal(store.flushed, true);
    const second = store.applyBatch(g1, i(2), [put("a", "2"), put("b", "2")]);
    await scheduler.step(); // the commit completes; its flush is still running
    assert.equal(await second, true);
    assert.equal(store.flushed, false);
    assert.deepEqual(dump(store, g1), [
      ["a", "2"],
      ["b", "2"],
    ]);
    store.powerLoss();
    await scheduler.runUntilIdle();
    assert.equal(store.appliedIndex(g1), 1);
    assert.deepEqual(dump(store, g1), [["a", "1"]]);
  });

  it("resolves a restore only once it is durable, so a power loss afterwards keeps it", async () => {
    const chunks = await restoreChunks(50);
    const scheduler = new ManualScheduler();
    const store = new MemoryStateStore({ scheduler, commitDelayMs: 1, flushDelayMs: 20 });
    const before = store.applyBatch(g1, i(7), [put("a", "old")]);
    await scheduler.runUntilIdle();
    await before;
    let restored = false;
    const restore = store.restoreGroup(g1, iterate(chunks)).then(() => {
      restored = true;
    });
    while (!restored) assert.ok(await scheduler.step(), "the restore finishes");
    await restore;
    // The runtime compacts the log as soon as the restore resolves: it must be durable by then.
    store.powerLoss();
    assert.equal(store.isRestoring(g1), false);
    assert.equal(store.appliedIndex(g1), 50);
    assert.equal(dec(store.get(g1, kv, enc("a"))), "snap-50");
  });

  it("can be left with a restore half done by a power loss, marked as restoring", async () => {
    const chunks = await restoreChunks(50);
    assert.ok(chunks.length >= 2, "the restore takes several commits");
    const scheduler = new ManualScheduler();
    // Flushes are quick and commits slow, so a flush lands between the restore's commits.
    const store = new MemoryStateStore({ scheduler, commitDelayMs: 10, flushDelayMs: 1 });
    void store.restoreGroup(g1, iterate(chunks));
    while (!store.isRestoring(g1) || !store.flushed) assert.ok(await scheduler.step());
    store.powerLoss();
    await scheduler.runUntilIdle();
    assert.equal(store.isRestoring(g1), true);
    assert.equal(store.appliedIndex(g1), 0, "the applied index arrives with the data, after the marker");
  });

  it("hands out an export's chunks only once the exported state is durable", async () => {
    const scheduler = new ManualScheduler();
    const store = new MemoryStateStore({ scheduler, commitDelayMs: 0, flushDelayMs: 10 });
    const applied = store.applyBatch(g1, i(3), [put("a", "1")]);
    await scheduler.step();
    await applied;
    assert.equal(store.flushed, false);
    const exported = store.exportGroup(g1, 256);
    let first: Uint8Array | undefined;
    const reading = (async () => {
      for await (const c of exported.chunks()) {
        first ??= c;
        assert.equal(store.flushed, true, "a chunk comes only after the flush");
      }
    })();
    await settleAll();
    assert.equal(first, undefined);
    await scheduler.runUntilIdle();
    await reading;
    assert.notEqual(first, undefined);
  });
});

async function settleAll(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

describe("LmdbStateStore checksums", () => {
  it("answers a value damaged on disk with ERR_STATE_CORRUPT on every read, never with the damaged bytes", async () => {
    const root = await mkdtemp(join(tmpdir(), "cairn-state-"));
    roots.push(root);
    const store = LmdbStateStore.open(root);
    await store.applyBatch(g1, i(3), [put("a", "apple"), put("b", "banana")]);
    assert.deepEqual(store.verify(), { pairs: 4 }, "two values, the applied index and the format");
    await store.close();
    // A bit flip inside the stored value of "a", written behind the store's back.
    const raw = open<Uint8Array, Uint8Array>({ path: root, keyEncoding: "binary", encoding: "binary" });
    const key = internalKey(g1, kv, enc("a"));
    const stored = raw.get(key);
    assert.ok(stored instanceof Uint8Array);
    const damaged = Uint8Array.from(stored);
    damaged[1] = (damaged[1] ?? 0) ^ 0x01;
    await raw.put(key, damaged);
    await raw.close();

    const again = LmdbStateStore.open(root);
    const corrupt = { code: "ERR_STATE_CORRUPT" };
    assert.throws(() => again.get(g1, kv, enc("a")), corrupt);
    assert.throws(() => again.range(g1, { kind: kv, limit: 10 }), corrupt);
    assert.throws(() => again.verify(), corrupt);
    assert.equal(dec(again.get(g1, kv, enc("b"))), "banana", "undamaged values still read");
    const exported = again.exportGroup(g1, 1024);
    await assert.rejects(async () => {
      for await (const _chunk of exported.chunks()) {
        // A capture of damaged state fails instead of carrying the damage on.
      }
    }, corrupt);
    await again.close();
  });

  it("adds checksums to a store written without them", async () => {
    const root = await mkdtemp(join(tmpdir(), "cairn-state-"));
    roots.push(root);
    const raw = open<Uint8Array, Uint8Array>({ path: root, keyEncoding: "binary", encoding: "binary" });
    await raw.put(internalKey(g1, kv, enc("old")), enc("value"));
    await raw.put(internalKey(g1, storeMetaKind, appliedIndexKey), encodeIndex(7));
    await raw.close();
    const store = LmdbStateStore.open(root);
    assert.equal(store.appliedIndex(g1), 7);
    assert.equal(dec(store.get(g1, kv, enc("old"))), "value");
    assert.deepEqual(store.verify(), { pairs: 3 });
    await store.close();
  });
});
