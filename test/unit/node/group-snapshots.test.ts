// A snapshot being installed survives retention: a newer snapshot committed while the install reads
// the file (found by level-2 seed 40001287) must not delete it. Method: a state store that commits
// newer snapshots at the moment the restore starts, before it reads the first chunk.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupSnapshots } from "../../../src/node/group-snapshots.js";
import { groupId, logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/types.js";
import { MemoryStateStore, SimFileSystem, SnapshotStore } from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";

const group = groupId(1);
const meta = (index: number): SnapshotMeta => ({
  index: logIndex(index),
  term: term(1),
  conf: { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [] },
});

/** Commits the given snapshots (as a capture or a receive beside the install would) when a restore starts. */
class RacingStateStore extends MemoryStateStore {
  race: () => Promise<void> = async () => undefined;

  override async restoreGroup(g: typeof group, chunks: AsyncIterable<Uint8Array>) {
    await this.race();
    return super.restoreGroup(g, chunks);
  }
}

describe("GroupSnapshots.install", () => {
  it("installs a snapshot even when newer ones are committed during the install", async () => {
    const fs = new SimFileSystem(new Prng(1));
    const files = await SnapshotStore.open(fs, "/snap", { retainMax: 2 });
    const source = new MemoryStateStore();
    const state = new RacingStateStore();
    const snapshots = new GroupSnapshots(files, state, group);
    const sourceSnapshots = new GroupSnapshots(files, source, group);
    // The leader's snapshot at 17, as received: the source store's (empty) data.
    const exported = source.exportGroup(group, 1024);
    await snapshots.store(meta(17), exported.chunks());
    state.race = async () => {
      state.race = async () => undefined;
      for (const index of [35, 53]) {
        const e = source.exportGroup(group, 1024);
        await sourceSnapshots.store(meta(index), e.chunks());
      }
    };
    await snapshots.install(meta(17));
    // Once the install is over, retention catches up at the next commit.
    await sourceSnapshots.store(meta(60), source.exportGroup(group, 1024).chunks());
    assert.deepEqual(await files.list(group), [60, 53]);
  });

  it("still fails when the snapshot to install is missing: the core needs exactly that one", async () => {
    const fs = new SimFileSystem(new Prng(1));
    const files = await SnapshotStore.open(fs, "/snap", { retainMax: 2 });
    const snapshots = new GroupSnapshots(files, new MemoryStateStore(), group);
    await assert.rejects(snapshots.install(meta(17)));
  });
});
