// When the log is compacted (src/node/snapshot-due.ts): a floor of entries or bytes since the base,
// and how far: a leader keeps what a lagging follower lacks, up to a ceiling.
// And what a compaction without a file rests on: the state store's durable applied index, and the
// base's meta recorded beside the snapshot files (GroupSnapshots.compactToState).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupSnapshots } from "../../../src/node/group-snapshots.js";
import { compactionPoint, type SnapshotInterval, snapshotDue } from "../../../src/node/snapshot-due.js";
import { groupId, logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/types.js";
import { MemoryStateStore, SimFileSystem, SnapshotStore } from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";
import { ManualScheduler } from "../storage/helpers.js";

const MiB = 1024 * 1024;
const interval: SnapshotInterval = { entriesBetween: 100_000, bytesBetween: 64 * MiB };
const group = groupId(1);
const meta = (index: number, voters = [1, 2, 3]): SnapshotMeta => ({
  index: logIndex(index),
  term: term(2),
  conf: { voters: voters.map(nodeId), learners: [nodeId(9)] },
});

describe("snapshotDue", () => {
  it("is not due below both floors", () => {
    assert.equal(snapshotDue(interval, { entries: 99_999, bytes: 64 * MiB - 1 }), false);
    assert.equal(snapshotDue(interval, { entries: 0, bytes: 0 }), false);
  });

  it("is due at either floor, whatever the state's size", () => {
    assert.equal(snapshotDue(interval, { entries: 100_000, bytes: 1 }), true);
    assert.equal(snapshotDue(interval, { entries: 1, bytes: 64 * MiB }), true);
  });

  it("without a bytes floor, counts entries only", () => {
    const entriesOnly = { entriesBetween: 10 };
    assert.equal(snapshotDue(entriesOnly, { entries: 9, bytes: 16 * 1024 * MiB }), false);
    assert.equal(snapshotDue(entriesOnly, { entries: 10, bytes: 0 }), true);
  });
});

describe("compactionPoint", () => {
  const held: SnapshotInterval = { entriesBetween: 100, logEntriesMax: 400 };
  const log = (entries: number) => ({ entries, bytes: 0, base: 1000, applied: 1000 + entries });

  it("is undefined until a compaction is due", () => {
    assert.equal(compactionPoint(held, log(99), undefined), undefined);
  });

  it("is the applied index on a follower, or when every follower has the whole log", () => {
    assert.equal(compactionPoint(held, log(100), undefined), 1100);
    assert.equal(compactionPoint(held, log(100), 1100), 1100);
  });

  it("keeps what a lagging follower lacks, once that still lets half of the log go", () => {
    assert.equal(compactionPoint(held, log(200), 1100), 1100);
    assert.equal(compactionPoint(held, log(200), 1099), undefined, "less than half: wait");
    assert.equal(compactionPoint(held, log(200), 900), undefined, "behind the base: wait");
  });

  it("compacts past the follower at the ceiling on entries or bytes", () => {
    assert.equal(compactionPoint(held, log(400), 900), 1400);
    const bytes = { entriesBetween: 100, logBytesMax: 64 };
    assert.equal(compactionPoint(bytes, { ...log(150), bytes: 64 }, 900), 1150);
    assert.equal(compactionPoint(bytes, { ...log(150), bytes: 63 }, 900), undefined);
  });
});

describe("A base without a file", () => {
  it("records the base's meta durably: a restarted process reads it back, configuration included", async () => {
    const fs = new SimFileSystem(new Prng(3));
    const files = await SnapshotStore.open(fs.process(), "/snap");
    const snapshots = new GroupSnapshots(files, new MemoryStateStore(), group);
    assert.equal(await snapshots.stateBase(), undefined);
    await snapshots.compactToState(meta(40));
    await snapshots.compactToState(meta(90, [1, 2]));
    fs.crash();
    const reopened = new GroupSnapshots(
      await SnapshotStore.open(fs.process(), "/snap"),
      new MemoryStateStore(),
      group,
    );
    assert.deepEqual(await reopened.stateBase(), meta(90, [1, 2]));
    assert.deepEqual(await reopened.latest(), undefined, "no snapshot file was written");
  });

  it("refuses a damaged record with ERR_SNAPSHOT_CORRUPT", async () => {
    const fs = new SimFileSystem(new Prng(4));
    const files = await SnapshotStore.open(fs, "/snap");
    await files.saveBase(group, meta(40));
    const [name] = (await fs.readdir("/snap")).filter((n) => n.startsWith("base-"));
    assert.ok(name !== undefined);
    const handle = await fs.open(`/snap/${name}`, "read-write");
    await handle.write(new Uint8Array([0xff]), 20);
    await handle.close();
    await assert.rejects(files.base(group), { code: "ERR_SNAPSHOT_CORRUPT" });
  });

  it("lets the older snapshot files go once the base moves past them", async () => {
    const fs = new SimFileSystem(new Prng(5));
    const files = await SnapshotStore.open(fs, "/snap", { retainMax: 1 });
    const snapshots = new GroupSnapshots(files, new MemoryStateStore(), group);
    const chunks = async function* () {
      yield new Uint8Array(10);
    };
    await snapshots.store(meta(10), chunks());
    snapshots.holdBase(10);
    await snapshots.store(meta(20), chunks());
    assert.deepEqual(await files.list(group), [20, 10], "the base's file is held");
    await snapshots.compactToState(meta(30));
    await snapshots.store(meta(40), chunks());
    assert.deepEqual(await files.list(group), [40], "the file at 10 is no base any more");
  });
});

describe("StateStore.durableAppliedIndex", () => {
  it("resolves only once the applied index it read survives a power loss", async () => {
    const scheduler = new ManualScheduler();
    const store = new MemoryStateStore({ scheduler, flushDelayMs: 5 });
    const applied = store.applyBatch(group, logIndex(7), []);
    await scheduler.runUntilIdle();
    assert.equal(await applied, true);
    let durable: number | undefined;
    void store.durableAppliedIndex(group).then((index) => {
      durable = index;
    });
    await Promise.resolve();
    assert.equal(durable, undefined, "not before the flush");
    await scheduler.runUntilIdle();
    assert.equal(durable, 7);
    store.powerLoss();
    assert.equal(store.appliedIndex(group), 7);
  });
});
