// A group's log storage held in memory by the test: it survives a simulated restart of its node,
// and a test can read or replace what it holds (scripted-group.ts gates its writes).
import type { GroupStorage, PersistBatch } from "../../src/node/ports.js";
import type { Entry, HardState, PersistedState, SnapshotMeta } from "../../src/raft/index.js";

/** Storage that survives a simulated restart of its node (it lives in the test). */
export class MemoryGroupStorage implements GroupStorage {
  hardState: HardState | undefined;
  snapshot: SnapshotMeta | undefined;
  entries: Entry[] = [];

  async load(): Promise<PersistedState | undefined> {
    if (this.hardState === undefined) return undefined;
    return {
      hardState: this.hardState,
      ...(this.snapshot ? { snapshot: this.snapshot } : {}),
      entries: [...this.entries],
    };
  }

  async persist(batch: PersistBatch): Promise<void> {
    await Promise.resolve();
    if (batch.snapshot !== undefined) {
      this.snapshot = batch.snapshot;
      this.entries = this.entries.filter((e) => e.index > (batch.snapshot?.index ?? 0));
    }
    const first = batch.entries[0];
    if (first !== undefined) {
      this.entries = this.entries.filter((e) => e.index < first.index);
      this.entries.push(...batch.entries);
    }
    if (batch.hardState !== undefined) this.hardState = batch.hardState;
  }

  async compact(snapshot: SnapshotMeta): Promise<void> {
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.index);
  }
}
