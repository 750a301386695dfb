// When a snapshot is due (src/node/snapshot-due.ts): the floor of entries or bytes, the share of the
// last snapshot's size the log must reach past it, and the ceilings that take one anyway. And the
// size that rule reads: the base snapshot's, as GroupSnapshots knows it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupSnapshots } from "../../../src/node/group-snapshots.js";
import { type SnapshotInterval, snapshotDue } from "../../../src/node/snapshot-due.js";
import { groupId, logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/types.js";
import { MemoryStateStore, SimFileSystem, SnapshotStore } from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";

const MiB = 1024 * 1024;
const interval: SnapshotInterval = {
  entriesBetween: 100_000,
  bytesBetween: 64 * MiB,
  stateSharePercent: 50,
  logBytesMax: 256 * MiB,
  logEntriesMax: 1_000_000,
};

describe("snapshotDue", () => {
  it("is not due below the floor, however small the last snapshot", () => {
    assert.equal(snapshotDue(interval, { entries: 99_999, bytes: 64 * MiB - 1, snapshotBytes: 0 }), false);
    assert.equal(snapshotDue(interval, { entries: 10, bytes: 10, snapshotBytes: undefined }), false);
  });

  it("is due at the floor (entries or bytes) when the last snapshot is small or unknown", () => {
    assert.equal(snapshotDue(interval, { entries: 100_000, bytes: 1, snapshotBytes: undefined }), true);
    assert.equal(snapshotDue(interval, { entries: 1, bytes: 64 * MiB, snapshotBytes: 0 }), true);
    assert.equal(snapshotDue(interval, { entries: 1, bytes: 64 * MiB, snapshotBytes: 128 * MiB }), true);
  });

  it("past the floor, waits until the log holds the share of the last snapshot's size", () => {
    const snapshotBytes = 400 * MiB;
    assert.equal(snapshotDue(interval, { entries: 500_000, bytes: 64 * MiB, snapshotBytes }), false);
    assert.equal(snapshotDue(interval, { entries: 500_000, bytes: 200 * MiB - 1, snapshotBytes }), false);
    assert.equal(snapshotDue(interval, { entries: 500_000, bytes: 200 * MiB, snapshotBytes }), true);
  });

  it("takes one at the ceiling on log bytes or entries even below the share", () => {
    const snapshotBytes = 4096 * MiB;
    assert.equal(snapshotDue(interval, { entries: 10, bytes: 256 * MiB - 1, snapshotBytes }), false);
    assert.equal(snapshotDue(interval, { entries: 10, bytes: 256 * MiB, snapshotBytes }), true);
    assert.equal(snapshotDue(interval, { entries: 999_999, bytes: 1, snapshotBytes }), false);
    assert.equal(snapshotDue(interval, { entries: 1_000_000, bytes: 1, snapshotBytes }), true);
  });

  it("a ceiling below the floor wins: it bounds the log whatever the floor says", () => {
    const low = { ...interval, logEntriesMax: 50 };
    assert.equal(snapshotDue(low, { entries: 50, bytes: 1, snapshotBytes: 0 }), true);
  });

  it("with the share at 0 (or unset) and no ceilings, it is the fixed interval of entries or bytes", () => {
    for (const fixed of [
      { ...interval, stateSharePercent: 0 },
      { entriesBetween: 100_000, bytesBetween: 64 * MiB },
    ]) {
      const snapshotBytes = 4096 * MiB;
      assert.equal(snapshotDue(fixed, { entries: 100_000, bytes: 1, snapshotBytes }), true);
      assert.equal(snapshotDue(fixed, { entries: 1, bytes: 64 * MiB, snapshotBytes }), true);
      assert.equal(snapshotDue(fixed, { entries: 99_999, bytes: 64 * MiB - 1, snapshotBytes }), false);
    }
  });

  it("bounds what snapshots write per byte of log: a fill of a growing state, step by step", () => {
    // Every log byte adds one byte of state; a snapshot writes the whole state. With the share at
    // 50%, snapshot bytes per log byte stay near 1 / 0.5 + 1 = 3, where the fixed interval's grow
    // with the state (one whole-state rewrite per 64 MiB).
    const fill = (rule: SnapshotInterval) => {
      let state = 0;
      let log = 0;
      let last: number | undefined;
      let written = 0;
      const stepBytes = MiB;
      for (let step = 0; step < 8192; step++) {
        state += stepBytes;
        log += stepBytes;
        if (snapshotDue(rule, { entries: 0, bytes: log, snapshotBytes: last })) {
          written += state;
          last = state;
          log = 0;
        }
      }
      return written / state;
    };
    const proportional = fill({ ...interval, logBytesMax: 16 * 1024 * MiB });
    const fixed = fill({ entriesBetween: Number.MAX_SAFE_INTEGER, bytesBetween: 64 * MiB });
    assert.ok(proportional <= 3, `proportional: ${proportional} snapshot bytes per log byte`);
    assert.ok(fixed > 60, `fixed: ${fixed} snapshot bytes per log byte`);
  });
});

describe("GroupSnapshots.baseBytes", () => {
  const group = groupId(1);
  const meta = (index: number): SnapshotMeta => ({
    index: logIndex(index),
    term: term(1),
    conf: { voters: [nodeId(1)], learners: [] },
  });

  it("is the size of the snapshot the log is compacted to: stored here, or read from its file at start", async () => {
    const fs = new SimFileSystem(new Prng(1));
    const files = await SnapshotStore.open(fs, "/snap", { retainMax: 2 });
    const state = new MemoryStateStore();
    const snapshots = new GroupSnapshots(files, state, group);
    assert.equal(snapshots.baseBytes(), undefined);
    const piece = new Uint8Array(1000).fill(7);
    await snapshots.store(
      meta(5),
      (async function* () {
        yield piece;
        yield piece;
      })(),
    );
    assert.equal(snapshots.baseBytes(), undefined, "stored, but the log is not compacted to it yet");
    snapshots.holdBase(5);
    assert.equal(snapshots.baseBytes(), 2000);
    assert.equal(snapshots.storedBytes(5), 2000);

    // A restart: the base is found on disk, its size read from the file (with its framing).
    const restarted = new GroupSnapshots(files, state, group);
    restarted.holdBase(5);
    assert.equal(restarted.baseBytes(), undefined);
    await restarted.measureBase();
    const size = restarted.baseBytes();
    assert.ok(size !== undefined && size >= 2000, `size ${size}`);
  });
});
