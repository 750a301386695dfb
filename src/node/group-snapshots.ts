// A group's snapshots: the base its log is compacted to, capturing the state machine into a
// durable snapshot file, reading one back for a lagging follower, storing one received from the
// leader, and installing it into the state store (Raft §7). The log compaction that a snapshot
// allows is the group storage's business.
//
// A base needs no file. The state store holds the state durably (lmdb), so the log can be compacted
// to the store's durable applied index with only the base's meta (index, term, configuration)
// recorded ({@link GroupSnapshots.compactToState}); a file is exported only when someone needs the
// state as bytes: a follower behind the base, a new member, a backup ({@link GroupSnapshots.capture}).
import type { GroupId, SnapshotMeta } from "../raft/index.js";
import type { SnapshotStore, StateStore } from "../storage/index.js";

/** Snapshot data travels and is stored in chunks of at most this size (the transport's limit too). */
export const snapshotChunkBytesMax = 128 * 1024;

/** A stored snapshot handed out as a backup: its meta, its size and its file's bytes. */
export interface SnapshotBackup {
  readonly meta: SnapshotMeta;
  readonly bytes: number;
  /** The file's bytes in order; the snapshot is kept from retention until this ends. */
  read(): AsyncGenerator<Uint8Array>;
}

/** Snapshots of one group on this node. */
export class GroupSnapshots {
  readonly #files: SnapshotStore;
  readonly #state: StateStore;
  readonly #group: GroupId;
  /** The pin on the snapshot the group's log is compacted to (see {@link holdBase}). */
  #base: { index: number; release: () => void } | undefined;
  /** The state bytes of the snapshots this service stored since it started, by index. */
  readonly #sizes = new Map<number, number>();
  /** Pins on received snapshots the core may still install, by index (see {@link receive}). */
  readonly #received = new Map<number, () => void>();

  /** Creates the snapshot service of `group`. */
  constructor(files: SnapshotStore, state: StateStore, group: GroupId) {
    this.#files = files;
    this.#state = state;
    this.#group = group;
  }

  /** The applied index a capture would describe: the state store's, read now. */
  appliedIndex(): number {
    return this.#state.appliedIndex(this.#group);
  }

  /**
   * The state store's applied index once it is durable (see StateStore.durableAppliedIndex), or
   * undefined while an install is under way (the store's data is not a state of the log then).
   */
  async durableAppliedIndex(): Promise<number | undefined> {
    if (this.#state.isRestoring(this.#group)) return undefined;
    const index = await this.#state.durableAppliedIndex(this.#group);
    return this.#state.isRestoring(this.#group) ? undefined : index;
  }

  /**
   * Makes `meta` the base of a log compacted without a file: records it durably (the state store
   * is durable at or past `meta.index`: see {@link durableAppliedIndex}), then holds it as the base.
   * The log may be compacted to it once this resolves.
   */
  async compactToState(meta: SnapshotMeta): Promise<void> {
    await this.#files.saveBase(this.#group, meta);
    this.holdBase(meta.index);
  }

  /** The base a log compacted without a file starts from (see {@link compactToState}), if recorded. */
  stateBase(): Promise<SnapshotMeta | undefined> {
    return this.#files.base(this.#group);
  }

  /**
   * Captures the state machine as of now into a durable snapshot file described by `meta(index)`.
   * The export is one consistent read, so applying may go on meanwhile.
   */
  async capture(meta: (appliedIndex: number) => SnapshotMeta | undefined): Promise<SnapshotMeta | undefined> {
    const exported = this.#state.exportGroup(this.#group, snapshotChunkBytesMax);
    const described = meta(exported.appliedIndex);
    if (described === undefined) {
      // Nothing to capture; drain the export so its read transaction ends.
      for await (const _chunk of exported.chunks()) {
        // discarded
      }
      return undefined;
    }
    // The core's log was compacted to `described` when it was described: it is the base now.
    const release = await this.#storePinned(described, exported.chunks());
    this.holdBase(described.index);
    release();
    return described;
  }

  /** Writes a snapshot's chunks to a durable file; retention may prune it at the next commit. */
  async store(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    (await this.#storePinned(meta, chunks))();
  }

  /**
   * Stores a snapshot received from the leader and keeps it from retention until the core has
   * installed it (a later {@link holdBase} at or past it) or refused it ({@link letGo}): a capture
   * or another received snapshot committed before the install must not delete the file the core
   * is about to install.
   */
  async receive(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const release = await this.#storePinned(meta, chunks);
    this.#received.get(meta.index)?.();
    this.#received.set(meta.index, release);
  }

  /** Lets retention have the received snapshot at `index`: the core refused it. */
  letGo(index: number): void {
    this.#received.get(index)?.();
    this.#received.delete(index);
  }

  /**
   * Keeps the snapshot at `index`, the one the group's log is now compacted to, from retention and
   * lets older ones go. The core starts from it after a restart and sends it to followers whose
   * entries are compacted away, so a newer file (a received snapshot the core refused counts
   * toward retention too) must never prune it. The base only moves forward: a capture described
   * before an install of a newer snapshot finishes after it and leaves the base where it is. A base
   * without a file (see {@link compactToState}) pins nothing and lets the older files go.
   */
  holdBase(index: number): void {
    if (this.#base !== undefined && index <= this.#base.index) return;
    const release = this.#files.pin(this.#group, index);
    this.#base?.release();
    this.#base = { index, release };
    for (const stored of this.#sizes.keys()) if (stored < index) this.#sizes.delete(stored);
    for (const [received, releaseReceived] of this.#received) {
      if (received > index) continue;
      releaseReceived();
      this.#received.delete(received);
    }
  }

  /** The state bytes of the snapshot at `index` if this service stored it since it started. */
  storedBytes(index: number): number | undefined {
    return this.#sizes.get(index);
  }

  /** Writes a snapshot's chunks to a durable file, pinned from before its commit until the release. */
  async #storePinned(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<() => void> {
    const release = this.#files.pin(this.#group, meta.index);
    try {
      const writer = await this.#files.create(this.#group, meta);
      let bytes = 0;
      try {
        for await (const chunk of chunks) {
          await writer.write(chunk);
          bytes += chunk.length;
        }
      } catch (error) {
        await writer.abort();
        throw error;
      }
      await writer.commit();
      this.#sizes.set(meta.index, bytes);
    } catch (error) {
      release();
      throw error;
    }
    return release;
  }

  /** The stored snapshot at `index`: its meta and verified chunks. */
  async open(index: number): Promise<{ meta: SnapshotMeta; chunks: () => AsyncIterable<Uint8Array> }> {
    const reader = await this.#files.open(this.#group, index);
    return { meta: reader.meta, chunks: () => reader.chunks() };
  }

  /**
   * The stored snapshot at `index` as a backup: verified through first (a damaged file is never
   * handed out: ERR_SNAPSHOT_CORRUPT), then its file's bytes, pinned until they are read.
   */
  async backup(index: number): Promise<SnapshotBackup> {
    const release = this.#files.pin(this.#group, index);
    try {
      const meta = await this.#files.verify(this.#group, index);
      const file = await this.#files.file(this.#group, index);
      return {
        meta,
        bytes: file.bytes,
        async *read() {
          try {
            yield* file.read();
          } finally {
            release();
          }
        },
      };
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Whether a snapshot at `index` is stored (pruning may have removed an older one). */
  async has(index: number): Promise<boolean> {
    return (await this.#files.list(this.#group)).includes(index);
  }

  /** The newest stored snapshot's meta, if any. */
  async latest(): Promise<SnapshotMeta | undefined> {
    return (await this.#files.latest(this.#group))?.meta;
  }

  /** Replaces the state machine's data with the stored snapshot at `meta.index`. */
  async install(meta: SnapshotMeta): Promise<void> {
    // Pinned for the whole install: a snapshot committed meanwhile (a capture, or a newer one from
    // the leader) would otherwise prune this one between the verify pass and the read. A file that
    // is gone before the pin stays an error: the core needs exactly this snapshot.
    const release = this.#files.pin(this.#group, meta.index);
    try {
      // Verify the whole file before touching the state: a corrupt snapshot must never be installed.
      await this.#files.verify(this.#group, meta.index);
      const reader = await this.#files.open(this.#group, meta.index);
      await this.#state.restoreGroup(this.#group, reader.chunks());
    } finally {
      release();
    }
  }

  /** Whether an install was interrupted by a crash (the state store's data is incomplete). */
  isRestoring(): boolean {
    return this.#state.isRestoring(this.#group);
  }
}
