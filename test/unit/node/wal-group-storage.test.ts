// A group's durable storage keeps the rule that the log is never compacted past what the state store
// holds durably (Invariant: WAL compactIndex <= the state store's durable applied index). Each test
// builds the state a crash or a race leaves on a simulated disk and an in-memory state store in
// lmdb's flush mode, then checks what loading (or compacting) makes of it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupSnapshots, snapshotChunkBytesMax } from "../../../src/node/group-snapshots.js";
import { WalGroupStorage } from "../../../src/node/wal-group-storage.js";
import { groupId, logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/types.js";
import { HardStateStore } from "../../../src/storage/hard-state-store.js";
import { MemoryStateStore } from "../../../src/storage/memory-state-store.js";
import { SimFileSystem } from "../../../src/storage/sim-file-system.js";
import { SnapshotStore } from "../../../src/storage/snapshot-store.js";
import { keyKind } from "../../../src/storage/state-store.js";
import { Wal } from "../../../src/storage/wal.js";
import { Prng } from "../../../src/util/prng.js";
import { entries } from "../storage/helpers.js";

/** The key kind the tests write to. */
const kv = keyKind(1);

const group = groupId(1);
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const meta = (index: number, t = 1): SnapshotMeta => ({
  index: logIndex(index),
  term: term(t),
  conf: { voters: [nodeId(1)], learners: [] },
});

/** The state of a node at `index`: one key naming it. */
async function stateAt(index: number): Promise<MemoryStateStore> {
  const store = new MemoryStateStore();
  await store.applyBatch(group, logIndex(index), [
    { op: "put", kind: kv, key: enc("k"), value: enc(`at-${index}`) },
  ]);
  return store;
}

/** One node's disk and state store, and a way to open its group storage as a restarted process would. */
class Node {
  readonly fs = new SimFileSystem(new Prng(7));
  readonly state = new MemoryStateStore({ flushDelayMs: 0 });

  async open(): Promise<{ storage: WalGroupStorage; wal: Wal; snapshots: GroupSnapshots }> {
    const fs = this.fs.process();
    const { wal, recovery } = await Wal.open(fs, "/wal");
    const hardStates = await HardStateStore.open(fs, "/hard-state");
    const files = await SnapshotStore.open(fs, "/snapshots", { chunkBytesMax: snapshotChunkBytesMax });
    const snapshots = new GroupSnapshots(files, this.state, group);
    return { storage: new WalGroupStorage(hardStates, wal, recovery, group, snapshots), wal, snapshots };
  }

  /** Stores the snapshot of the state at `index` as a file, as a capture or a received one would be. */
  async storeSnapshot(snapshots: GroupSnapshots, index: number): Promise<void> {
    await snapshots.store(meta(index), (await stateAt(index)).exportGroup(group, 1024).chunks());
  }
}

describe("WalGroupStorage: the log is never compacted past what the state store holds", () => {
  it("installs the snapshot again when the state store lost it after the log was compacted", async () => {
    // A restore was visible, the log compacted to it, and a power loss took the restore back.
    const node = new Node();
    const first = await node.open();
    await first.wal.write([{ type: "entries", group, entries: entries(1, 3) }]);
    await node.storeSnapshot(first.snapshots, 10);
    await first.wal.compact(group, logIndex(10), term(1));
    assert.equal(node.state.appliedIndex(group), 0);

    const loaded = await (await node.open()).storage.load();
    assert.equal(loaded?.snapshot?.index, 10);
    assert.equal(node.state.appliedIndex(group), 10, "the state is back at the compaction point");
    assert.equal(dec(node.state.get(group, kv, enc("k"))), "at-10");
  });

  it("finishes a restore cut short even when the log was compacted to its snapshot already", async () => {
    const node = new Node();
    const first = await node.open();
    await node.storeSnapshot(first.snapshots, 10);
    await first.wal.compact(group, logIndex(10), term(1));
    // A power loss in the middle of the restore: the marker is durable, the data is not all there.
    await assert.rejects(
      node.state.restoreGroup(
        group,
        (async function* () {
          yield* [];
          throw new Error("power lost");
        })(),
      ),
    );
    assert.equal(node.state.isRestoring(group), true);

    await (await node.open()).storage.load();
    assert.equal(node.state.isRestoring(group), false);
    assert.equal(node.state.appliedIndex(group), 10);
    assert.equal(dec(node.state.get(group, kv, enc("k"))), "at-10");
  });

  it("refuses to start with ERR_STATE_BEHIND_LOG when no snapshot can bring the state back", async () => {
    const node = new Node();
    const first = await node.open();
    await first.wal.write([{ type: "entries", group, entries: entries(1, 12) }]);
    await first.wal.compact(group, logIndex(10), term(1));
    await assert.rejects((await node.open()).storage.load(), { code: "ERR_STATE_BEHIND_LOG" });
  });

  it("installs the newest snapshot when snapshots received but not installed pruned the compaction point's", async () => {
    // Found by level-2 seeds 3000106 and 3000181: two snapshots from the leader were stored, power
    // was lost before either was installed, and the store's retention (2) had deleted the one the
    // log is compacted to, so the node could not start (ERR_SNAPSHOT_CORRUPT).
    const node = new Node();
    const first = await node.open();
    await first.wal.write([{ type: "entries", group, entries: entries(1, 14) }]);
    await node.storeSnapshot(first.snapshots, 10);
    await first.snapshots.install(meta(10));
    await first.wal.compact(group, logIndex(10), term(1));
    await node.storeSnapshot(first.snapshots, 30);
    await node.storeSnapshot(first.snapshots, 40);
    assert.equal(await first.snapshots.has(10), false, "retention pruned the compaction point's snapshot");

    const loaded = await (await node.open()).storage.load();
    assert.equal(loaded?.snapshot?.index, 40);
    assert.equal(node.state.appliedIndex(group), 40);
    assert.equal(dec(node.state.get(group, kv, enc("k"))), "at-40");
    assert.deepEqual(loaded?.entries, []);
  });

  it("starts as before when the state store holds the compaction point durably", async () => {
    const node = new Node();
    const first = await node.open();
    await first.wal.write([{ type: "entries", group, entries: entries(1, 12) }]);
    await node.storeSnapshot(first.snapshots, 10);
    await first.snapshots.install(meta(10));
    await first.wal.compact(group, logIndex(10), term(1));
    node.state.powerLoss();

    const loaded = await (await node.open()).storage.load();
    assert.equal(node.state.appliedIndex(group), 10);
    assert.deepEqual(
      loaded?.entries.map((e) => e.index),
      [11, 12],
    );
  });
});

describe("WalGroupStorage: a log compacted to the state store, without a snapshot file", () => {
  /** A node whose log holds entries 1..12 and whose state store applied through 10, durably. */
  async function appliedThrough10(): Promise<{ node: Node; first: Awaited<ReturnType<Node["open"]>> }> {
    const node = new Node();
    const first = await node.open();
    await first.wal.write([{ type: "entries", group, entries: entries(1, 12) }]);
    await node.state.applyBatch(group, logIndex(10), [
      { op: "put", kind: kv, key: enc("k"), value: enc("at-10") },
    ]);
    assert.equal(await node.state.durableAppliedIndex(group), 10);
    return { node, first };
  }

  it("restarts from the state store: the base's meta and the entries after it, no file read", async () => {
    const { node, first } = await appliedThrough10();
    await first.snapshots.compactToState(meta(10));
    await first.storage.compact(meta(10));
    node.state.powerLoss();

    const loaded = await (await node.open()).storage.load();
    assert.deepEqual(loaded?.snapshot, meta(10));
    assert.deepEqual(
      loaded?.entries.map((e) => e.index),
      [11, 12],
    );
    assert.equal(dec(node.state.get(group, kv, enc("k"))), "at-10");
    assert.deepEqual(await first.snapshots.latest(), undefined, "no snapshot file exists");
  });

  it("starts from the recorded base when a crash came before the log's compaction, and compacts the log", async () => {
    const { node, first } = await appliedThrough10();
    await first.snapshots.compactToState(meta(10));

    const second = await node.open();
    const loaded = await second.storage.load();
    assert.deepEqual(loaded?.snapshot, meta(10));
    assert.deepEqual(
      loaded?.entries.map((e) => e.index),
      [11, 12],
    );
    assert.equal(second.wal.position(group).compactIndex, 10);
  });

  it("ignores a record below the compaction point: a snapshot file compacted the log further since", async () => {
    const { node, first } = await appliedThrough10();
    await first.snapshots.compactToState(meta(4));
    await first.storage.compact(meta(4));
    await node.storeSnapshot(first.snapshots, 10);
    await first.snapshots.install(meta(10));
    await first.storage.persist({ snapshot: meta(10), entries: [] });

    const loaded = await (await node.open()).storage.load();
    assert.equal(loaded?.snapshot?.index, 10);
    assert.deepEqual(loaded?.entries, []);
  });

  it("refuses to start with ERR_STATE_BEHIND_LOG when the state store lost what the base stands on", async () => {
    const { node, first } = await appliedThrough10();
    await first.snapshots.compactToState(meta(10));
    await first.storage.compact(meta(10));
    // Damage, not a power loss (the record followed a flush): the store is back at an older state.
    const lost = new Node();
    await assert.rejects(
      (async () => {
        const fs = node.fs.process();
        const { wal, recovery } = await Wal.open(fs, "/wal");
        const files = await SnapshotStore.open(fs, "/snapshots", { chunkBytesMax: snapshotChunkBytesMax });
        const hardStates = await HardStateStore.open(fs, "/hard-state");
        const snapshots = new GroupSnapshots(files, lost.state, group);
        return new WalGroupStorage(hardStates, wal, recovery, group, snapshots).load();
      })(),
      { code: "ERR_STATE_BEHIND_LOG" },
    );
  });
});

describe("WalGroupStorage: a capture racing an install (issue 12, bug 3)", () => {
  it("ignores a capture's compaction below the point an install compacted to meanwhile", async () => {
    const node = new Node();
    const { storage, wal, snapshots } = await node.open();
    await storage.load();
    await storage.persist({ entries: entries(1, 40) });
    // The ready loop installs a received snapshot at 60 and compacts the log to it, while a capture
    // at 40 that started before it is still writing its file; the capture's compaction comes last.
    await node.storeSnapshot(snapshots, 60);
    await snapshots.install(meta(60));
    await storage.persist({ snapshot: meta(60), entries: [] });
    await storage.compact(meta(40));
    assert.equal(wal.position(group).compactIndex, 60);
    // The log goes on after the snapshot.
    await storage.persist({ entries: entries(61, 2) });
    assert.equal(wal.position(group).lastIndex, 62);
  });
});
