// Hard state and snapshot files on the simulated disk: round trips, atomic replacement under a crash
// at every disk operation (old or new, never torn or missing), checksum failures reported with their
// code and site, a full disk rejecting writes while reads go on, and fail-stop on a failed fsync.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type HardState, logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/types.js";
import {
  HardStateStore,
  SimFileSystem,
  SnapshotStore,
  type StorageError,
} from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";
import { g1, g2, ManualScheduler, settle } from "./helpers.js";

const hs = (t: number, vote: number | null, commit: number): HardState => ({
  term: term(t),
  votedFor: vote === null ? null : nodeId(vote),
  commitIndex: logIndex(commit),
});
const meta = (index: number, t = 1): SnapshotMeta => ({
  index: logIndex(index),
  term: term(t),
  conf: { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [nodeId(4)] },
});
const chunk = (n: number, size = 100): Uint8Array => new Uint8Array(size).fill(n & 0xff);

async function fresh(seed = 1): Promise<SimFileSystem> {
  return new SimFileSystem(new Prng(seed));
}

async function readAll(store: SnapshotStore, group = g1): Promise<number[][]> {
  const reader = await store.latest(group);
  const out: number[][] = [];
  if (reader === undefined) return out;
  for await (const c of reader.chunks()) out.push([c.length, c[0] ?? -1]);
  return out;
}

describe("HardStateStore", () => {
  it("saves and loads each group's hard state, surviving a crash once saved", async () => {
    const fs = await fresh();
    const store = await HardStateStore.open(fs, "/hs");
    assert.equal(await store.load(g1), undefined);
    await store.save(g1, hs(3, 2, 10));
    await store.save(g2, hs(1, null, 0));
    await store.save(g1, hs(4, null, 12));
    fs.crash();
    const again = await HardStateStore.open(fs, "/hs");
    assert.deepEqual(await again.load(g1), hs(4, null, 12));
    assert.deepEqual(await again.load(g2), hs(1, null, 0));
    assert.deepEqual((await again.groups()).sort(), [g1, g2]);
  });

  it("is replaced atomically: a crash at any disk operation leaves the old or the new state", async () => {
    let sawOld = false;
    let sawNew = false;
    for (let cut = 0; cut < 12; cut++) {
      const scheduler = new ManualScheduler();
      const fs = new SimFileSystem(new Prng(cut), scheduler);
      const opening = HardStateStore.open(fs, "/hs");
      await scheduler.runUntilIdle();
      const store = await opening;
      const first = store.save(g1, hs(1, 1, 1));
      await scheduler.runUntilIdle();
      await first;
      void store.save(g1, hs(2, 3, 5)).catch(() => undefined);
      await settle();
      for (let i = 0; i < cut; i++) await scheduler.step();
      fs.crash();
      const reopening = HardStateStore.open(fs, "/hs");
      await scheduler.runUntilIdle();
      const loading = (await reopening).load(g1);
      await scheduler.runUntilIdle();
      const got = await loading;
      assert.ok(got !== undefined, `cut ${cut}: hard state vanished`);
      if (got.term === 1) sawOld = true;
      else sawNew = true;
      assert.ok(
        got.term === 1 || (got.term === 2 && got.votedFor === 3),
        `cut ${cut}: ${JSON.stringify(got)}`,
      );
    }
    assert.ok(sawOld && sawNew);
  });

  it("reports a damaged file as ERR_HARD_STATE_CORRUPT", async () => {
    const fs = await fresh();
    const store = await HardStateStore.open(fs, "/hs");
    await store.save(g1, hs(3, 2, 10));
    fs.corrupt("/hs/hardstate-0000000001.bin", 21);
    await assert.rejects(
      store.load(g1),
      (e: StorageError) => e.code === "ERR_HARD_STATE_CORRUPT" && e.site?.offset === 0,
    );
  });

  it("rejects a save with ERR_NO_SPACE on a full disk, keeps the old state readable, and saves once space is freed", async () => {
    const fs = await fresh();
    const store = await HardStateStore.open(fs, "/hs");
    await store.save(g1, hs(3, 2, 10));
    fs.setFaults({ bytesMax: fs.usedBytes() + 10 });
    await assert.rejects(store.save(g1, hs(4, 1, 11)), { code: "ERR_NO_SPACE" });
    assert.deepEqual(await store.load(g1), hs(3, 2, 10));
    fs.setFaults({ bytesMax: Number.POSITIVE_INFINITY });
    await store.save(g1, hs(4, 1, 11));
    assert.deepEqual(await store.load(g1), hs(4, 1, 11));
  });

  it("stops for good when an fsync fails", async () => {
    const fs = await fresh();
    const failures: StorageError[] = [];
    const store = await HardStateStore.open(fs, "/hs", { onFailure: (e) => failures.push(e) });
    fs.setFaults({ syncEio: { numerator: 1, denominator: 1 } });
    await assert.rejects(store.save(g1, hs(1, 1, 1)), { code: "ERR_STORAGE_FAILED" });
    fs.setFaults({ syncEio: { numerator: 0, denominator: 1 } });
    await assert.rejects(store.save(g1, hs(1, 1, 1)), { code: "ERR_STORAGE_FAILED" });
    assert.equal(failures.length, 1);
  });
});

describe("SnapshotStore", () => {
  it("writes and reads a snapshot in bounded chunks, metadata included", async () => {
    const fs = await fresh();
    const store = await SnapshotStore.open(fs, "/snap", { chunkBytesMax: 100 });
    const w = await store.create(g1, meta(50, 3));
    for (let i = 0; i < 20; i++) await w.write(chunk(i));
    await w.commit();
    const reader = await store.latest(g1);
    assert.deepEqual(reader?.meta, meta(50, 3));
    const got = await readAll(store);
    assert.deepEqual(
      got,
      Array.from({ length: 20 }, (_, i) => [100, i]),
    );
    assert.deepEqual(await store.verify(g1, 50), meta(50, 3));
    assert.equal(await store.latest(g2), undefined);
  });

  it("rejects a chunk above chunkBytesMax", async () => {
    const fs = await fresh();
    const store = await SnapshotStore.open(fs, "/snap", { chunkBytesMax: 100 });
    const w = await store.create(g1, meta(5));
    await assert.rejects(w.write(chunk(1, 101)), { code: "ERR_TOO_LARGE" });
    await w.abort();
    assert.deepEqual(await fs.readdir("/snap"), []);
  });

  it("finds a flipped bit or a cut file before install (ERR_SNAPSHOT_CORRUPT with the offset)", async () => {
    const fs = await fresh();
    const store = await SnapshotStore.open(fs, "/snap", { chunkBytesMax: 100 });
    const w = await store.create(g1, meta(7));
    for (let i = 0; i < 5; i++) await w.write(chunk(i));
    await w.commit();
    const [name] = await fs.readdir("/snap");
    const path = `/snap/${name ?? ""}`;
    const size = fs.contents(path)?.length ?? 0;
    fs.corrupt(path, size - 150);
    await assert.rejects(
      store.verify(g1, 7),
      (e: StorageError) => e.code === "ERR_SNAPSHOT_CORRUPT" && e.site !== undefined,
    );
    fs.corrupt(path, size - 150);
    await store.verify(g1, 7);
    const h = await fs.open(path, "read-write");
    await h.truncate(size - 8);
    await h.close();
    await assert.rejects(store.verify(g1, 7), { code: "ERR_SNAPSHOT_CORRUPT" });
  });

  it("keeps only retainMax snapshots per group, newest first", async () => {
    const fs = await fresh();
    const store = await SnapshotStore.open(fs, "/snap", { retainMax: 2 });
    for (const index of [10, 20, 30]) {
      const w = await store.create(g1, meta(index));
      await w.write(chunk(index));
      await w.commit();
    }
    const other = await store.create(g2, meta(5));
    await other.commit();
    assert.deepEqual(await store.list(g1), [30, 20]);
    assert.deepEqual(await store.list(g2), [5]);
  });

  it("takes writers at once: the same snapshot twice, and another beside it, interleaved", async () => {
    // A follower may capture its own snapshot while it stores one its leader streams, and a leader
    // may stream one snapshot twice; the store must stay healthy (found by the level-2 simulator).
    const fs = await fresh();
    const store = await SnapshotStore.open(fs, "/snap", { retainMax: 1 });
    for (const index of [10, 20]) {
      const w = await store.create(g1, meta(index));
      await w.commit();
    }
    const a = await store.create(g1, meta(30));
    const b = await store.create(g1, meta(30));
    const c = await store.create(g1, meta(40));
    for (let k = 0; k < 3; k++) {
      await a.write(chunk(30 + k));
      await c.write(chunk(40 + k));
      await b.write(chunk(30 + k));
    }
    await Promise.all([a.commit(), b.commit(), c.commit()]);
    assert.deepEqual(await store.list(g1), [40]);
    assert.deepEqual(await readAll(store), [
      [100, 40],
      [100, 41],
      [100, 42],
    ]);
    const d = await store.create(g1, meta(50));
    await d.commit();
    assert.deepEqual(await store.list(g1), [50], "the store still works");
  });

  it("shows a snapshot only once committed: a crash at any disk operation leaves none or a whole one", async () => {
    let sawNone = false;
    let sawWhole = false;
    for (let cut = 0; cut < 30; cut++) {
      const scheduler = new ManualScheduler();
      const fs = new SimFileSystem(new Prng(cut), scheduler);
      const run = async (): Promise<void> => {
        const store = await SnapshotStore.open(fs, "/snap", { chunkBytesMax: 64 });
        const w = await store.create(g1, meta(9));
        for (let i = 0; i < 6; i++) await w.write(chunk(i, 64));
        await w.commit();
      };
      void run().catch(() => undefined);
      await settle();
      for (let i = 0; i < cut; i++) await scheduler.step();
      fs.crash();
      const checking = (async () => {
        const store = await SnapshotStore.open(fs, "/snap", { chunkBytesMax: 64 });
        const indexes = await store.list(g1);
        if (indexes.length === 0) return "none";
        await store.verify(g1, 9);
        return "whole";
      })();
      await scheduler.runUntilIdle();
      const outcome = await checking;
      if (outcome === "none") sawNone = true;
      else sawWhole = true;
      const names = await (async () => {
        const p = fs.readdir("/snap");
        await scheduler.runUntilIdle();
        return p;
      })();
      assert.ok(!names.some((n) => n.endsWith(".tmp")), `cut ${cut}: temp file left`);
    }
    assert.ok(sawNone && sawWhole);
  });

  it("rejects a snapshot write on a full disk, keeps older snapshots readable, and writes once space is freed", async () => {
    const fs = await fresh();
    const store = await SnapshotStore.open(fs, "/snap", { chunkBytesMax: 100 });
    const first = await store.create(g1, meta(10));
    await first.write(chunk(1));
    await first.commit();
    fs.setFaults({ bytesMax: fs.usedBytes() + 250 });
    const w = await store.create(g1, meta(20));
    await w.write(chunk(2));
    await assert.rejects(
      (async () => {
        for (let i = 0; i < 5; i++) await w.write(chunk(2));
      })(),
      { code: "ERR_NO_SPACE" },
    );
    assert.deepEqual(await store.list(g1), [10]);
    assert.deepEqual(await readAll(store), [[100, 1]]);
    fs.setFaults({ bytesMax: Number.POSITIVE_INFINITY });
    const again = await store.create(g1, meta(20));
    for (let i = 0; i < 5; i++) await again.write(chunk(2));
    await again.commit();
    assert.deepEqual(await store.list(g1), [20, 10]);
  });
});
