// The write-ahead log holding the Raft log of every group on a node (layout in docs/design.md,
// "Storage"). Callers hand over records with write(); records queued while a flush is running ride
// together in the next one, so any number of groups and callers share one durable write (group
// commit). A write resolves only once its records are durable.
import type { Entry, GroupId, LogIndex, Term } from "../raft/index.js";
import { groupId, logIndex, term } from "../raft/index.js";
import { assert } from "../util/index.js";
import { makeDirDurable } from "./atomic-file.js";
import { concatBytes } from "./bytes.js";
import { errnoOf, type FileHandle, type FileSystem, joinPath } from "./file-system.js";
import { StorageError } from "./storage-error.js";
import {
  type DurableEnd,
  durableEndFileName,
  durableEndLoss,
  readDurableEnd,
  writeDurableEnd,
} from "./wal-durable-end.js";
import {
  type DiskRecord,
  encodeRecord,
  encodeSegmentHeader,
  type GroupCheckpoint,
  recordHeaderBytes,
  segmentHeaderBytes,
  type WalRecord,
} from "./wal-format.js";
import { applyToGroupState, emptyGroupState, type GroupState } from "./wal-group-state.js";
import {
  groupCorruptionError,
  openTail,
  recover,
  type Segment,
  segmentName,
  segmentPattern,
  type WalCorruption,
  type WalRecovery,
} from "./wal-recovery.js";
import {
  nextTailLost,
  readTailLost,
  sameTailLost,
  tailLostFileName,
  writeTailLost,
} from "./wal-tail-lost.js";

/** Settings of a {@link Wal}; every bound is a `*Max`. */
export interface WalOptions {
  /** A segment rolls before a flush would take it past this size (a single larger flush gets its own segment). */
  readonly segmentBytesMax: number;
  /** The largest record (header included); an entries batch above it is split, a single larger entry rejected. */
  readonly recordBytesMax: number;
  /** Bytes queued for the next flush; a write beyond it waits for the running flush to finish. */
  readonly pendingBytesMax: number;
  /** Called once when the log fails (an fsync or write error): the node must stop (fail-stop). */
  readonly onFailure?: (error: StorageError) => void;
  /**
   * Records the durable end in the side file (wal-durable-end.ts) each time the log has grown by
   * this many bytes since the last record (and at each new segment), in the background; 0 after
   * every flush that finds no record in flight; undefined: never (a cut newest segment then goes
   * unnoticed).
   */
  readonly durableEndEveryBytes?: number;
}

/** Defaults: 64 MiB segments, 8 MiB records (a 1 MiB value fits with room), 32 MiB queued. */
export const defaultWalOptions: WalOptions = {
  segmentBytesMax: 64 * 1024 * 1024,
  recordBytesMax: 8 * 1024 * 1024,
  pendingBytesMax: 32 * 1024 * 1024,
};

interface Pending {
  readonly records: readonly WalRecord[];
  readonly bytes: readonly Uint8Array[];
  readonly size: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The node's write-ahead log. Open it with {@link Wal.open}, which recovers what is on disk first.
 * After an I/O failure it refuses everything with ERR_STORAGE_FAILED (fail-stop); when the disk is
 * full it rejects writes with ERR_NO_SPACE and accepts them again once space is freed.
 */
export class Wal {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #options: WalOptions;
  readonly #segments: Segment[];
  #tail: FileHandle;
  #tailBytes: number;
  /** Group positions as of the last durable flush. */
  #durable: Map<GroupId, GroupState>;
  /** Group positions including records queued but not yet durable: what new records must follow. */
  #accepted: Map<GroupId, GroupState>;
  readonly #recovery: WalRecovery;
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #flushing: Promise<void> = Promise.resolve();
  #flushRunning = false;
  /** Writes waiting for room in the queue, admitted one after another by `#admission`. */
  #waitingForRoom = 0;
  #admission: Promise<void> = Promise.resolve();
  /** Bumped whenever queued records are dropped for lack of space. */
  #noSpaceGeneration = 0;
  #deleting: Promise<void> = Promise.resolve();
  #failed: StorageError | undefined;
  #closed = false;
  /** The durable end last recorded in the side file, and the record being written, if any. */
  #recordedEnd: DurableEnd | undefined;
  #recordingEnd: Promise<void> | undefined;

  private constructor(
    fs: FileSystem,
    dir: string,
    options: WalOptions,
    segments: Segment[],
    tail: FileHandle,
    tailBytes: number,
    durable: Map<GroupId, GroupState>,
    recovery: WalRecovery,
  ) {
    this.#fs = fs;
    this.#dir = dir;
    this.#options = options;
    this.#segments = segments;
    this.#tail = tail;
    this.#tailBytes = tailBytes;
    this.#durable = durable;
    this.#accepted = cloneStates(durable);
    this.#recovery = recovery;
  }

  /**
   * Opens (creating if needed) the log in `dir` and recovers it: a torn record at the end of the last
   * segment is truncated away; corruption anywhere else is reported per group in `recovery`.
   */
  static async open(
    fs: FileSystem,
    dir: string,
    options: Partial<WalOptions> = {},
  ): Promise<{ wal: Wal; recovery: WalRecovery }> {
    const opts: WalOptions = { ...defaultWalOptions, ...options };
    assert(opts.recordBytesMax <= opts.pendingBytesMax, "recordBytesMax must not exceed pendingBytesMax");
    assert(opts.segmentBytesMax > segmentHeaderBytes + recordHeaderBytes, "segmentBytesMax too small");
    await makeDirDurable(fs, dir);
    const names = await fs.readdir(dir);
    // A temp file is a segment whose creation a crash interrupted before its rename: never in use.
    for (const name of names.filter((n) => n.endsWith(".tmp"))) await fs.unlink(joinPath(dir, name));
    const segmentNames = names.filter((n) => segmentPattern.test(n));
    const found = await recover(fs, dir, segmentNames, opts.recordBytesMax);
    const durable = new Map<GroupId, GroupState>();
    for (const [group, log] of found.logs) durable.set(group, { ...log.state });
    let tail: FileHandle;
    let tailBytes: number;
    const last = found.segments[found.segments.length - 1];
    // Durable records cut from the end of the log (before the torn tail is cut below).
    const recordedEnd = await readDurableEnd(fs, dir);
    const lastBytes =
      last === undefined
        ? 0
        : (found.recovery.tornTail?.offset ?? (await fs.stat(joinPath(dir, last.name)))?.size ?? 0);
    const loss = durableEndLoss(recordedEnd, last, lastBytes);
    // Before a torn tail is cut below, what it may have lost is recorded, durably.
    const storedLost = await readTailLost(fs, dir);
    const torn = found.recovery.tornTail;
    const tailLost = nextTailLost(
      storedLost === "corrupt" ? new Map() : storedLost,
      torn?.mayHaveBeenAcknowledged === true && torn.entriesMax > 0
        ? {
            groups: torn.group !== undefined ? [torn.group] : [...found.logs.keys()],
            entriesMax: torn.entriesMax,
          }
        : undefined,
      (group) => found.logs.get(groupId(group))?.state.lastIndex ?? 0,
    );
    if (storedLost === "corrupt" || !sameTailLost(storedLost, tailLost))
      await writeTailLost(fs, dir, tailLost);
    const problems: WalCorruption[] = [
      ...(loss === undefined
        ? []
        : [{ file: last?.name ?? durableEndFileName, offset: lastBytes, reason: loss }]),
      // Which groups it named, and how far, is unknown: every group must be repaired.
      ...(storedLost === "corrupt"
        ? [
            {
              file: tailLostFileName,
              offset: 0,
              reason: `the WAL's ${tailLostFileName} record fails its checksum`,
            },
          ]
        : []),
    ];
    const recovery: WalRecovery =
      problems.length === 0
        ? { ...found.recovery, tailLost }
        : {
            ...found.recovery,
            corruption: [...found.recovery.corruption, ...problems],
            allGroupsSuspect: true,
            tailLost,
          };
    if (last === undefined) {
      const seg: Segment = { seq: 1, name: segmentName(1), maxIndex: new Map() };
      tail = await createSegment(fs, dir, seg, durable);
      found.segments.push(seg);
      tailBytes = await tail.size();
    } else {
      ({ tail, tailBytes } = await openTail(fs, dir, last, found.recovery.tornTail));
    }
    const wal = new Wal(fs, dir, opts, found.segments, tail, tailBytes, durable, recovery);
    if (recordedEnd !== undefined && recordedEnd !== "corrupt" && loss === undefined)
      wal.#recordedEnd = recordedEnd;
    return { wal, recovery };
  }

  /** What recovery found when this log was opened. */
  get recovery(): WalRecovery {
    return this.#recovery;
  }

  /** ERR_GROUP_CORRUPT when `group`'s log is corrupt (it must not vote or lead), else undefined. */
  groupError(group: GroupId): StorageError | undefined {
    return groupCorruptionError(this.#recovery, group);
  }

  /** The durable position of `group`'s log: last index and compaction point. */
  position(group: GroupId): { lastIndex: LogIndex; compactIndex: LogIndex; compactTerm: Term } {
    const s = this.#durable.get(group) ?? emptyGroupState();
    return {
      lastIndex: logIndex(s.lastIndex),
      compactIndex: logIndex(s.compactIndex),
      compactTerm: term(s.compactTerm),
    };
  }

  /** The segment file names, oldest first (for tests and status). */
  segmentNames(): string[] {
    return this.#segments.map((s) => s.name);
  }

  /**
   * Appends `records` (of any groups) and resolves once they are durable. Concurrent calls share one
   * durable write (group commit). Records must follow each group's log: no gaps, nothing at or below the compaction
   * point (a broken promise of the caller, so an assertion).
   */
  async write(records: readonly WalRecord[]): Promise<void> {
    this.#checkUsable();
    for (const record of records) {
      const problem = this.groupError(record.group);
      if (problem !== undefined) throw problem;
    }
    const split = records.flatMap((r) => this.#split(r));
    const bytes = split.map(encodeRecord);
    let size = 0;
    for (const b of bytes) size += b.length;
    // Bounded queue: wait for room rather than let the backlog grow without limit. Waiters queue up
    // in call order, so a small write can never overtake a large one that is waiting (log order).
    const generation = this.#noSpaceGeneration;
    if (this.#waitingForRoom > 0 || this.#overLimit(size)) {
      this.#waitingForRoom++;
      const turn = this.#admission.then(async () => {
        while (this.#overLimit(size)) {
          this.#kick();
          await this.#flushing;
          this.#checkUsable();
        }
      });
      this.#admission = turn.catch(() => undefined);
      try {
        await turn;
      } finally {
        this.#waitingForRoom--;
      }
      // Records queued before this write were rejected while it waited: it may build on them.
      if (generation !== this.#noSpaceGeneration) {
        throw new StorageError("ERR_NO_SPACE", "an earlier WAL write was rejected for lack of space");
      }
    }
    for (const record of split) {
      const state = groupStateOf(this.#accepted, record.group);
      const problem = applyToGroupState(state, record);
      assert(problem === undefined, `WAL write out of order for group ${record.group}: ${problem ?? ""}`);
    }
    const done = new Promise<void>((resolve, reject) => {
      this.#pending.push({ records: split, bytes, size, resolve, reject });
    });
    this.#pendingBytes += size;
    this.#kick();
    return done;
  }

  /** Durably drops `group`'s entries from `fromIndex` on (Raft §5.3: a conflicting suffix). */
  truncateSuffix(group: GroupId, fromIndex: LogIndex): Promise<void> {
    return this.write([{ type: "truncate-suffix", group, fromIndex }]);
  }

  /**
   * Records that a durable snapshot covers `group` through `throughIndex` (Raft §7), then deletes
   * every oldest segment whose entries, for every group in it, are all covered. The last segment is
   * never deleted.
   */
  async compact(group: GroupId, throughIndex: LogIndex, snapshotTerm: Term): Promise<void> {
    await this.write([{ type: "compact", group, throughIndex, term: snapshotTerm }]);
    const run = this.#deleting.then(() => this.#deleteCovered());
    this.#deleting = run.catch(() => undefined);
    await run;
  }

  /** Waits for queued writes, then closes the log; later calls fail with ERR_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#flushRunning) await this.#flushing;
    await this.#deleting;
    await this.#recordingEnd;
    this.#closed = true;
    if (this.#failed === undefined) await this.#tail.close();
  }

  /** Splits an entries record above `recordBytesMax` into several; a single oversized entry is rejected. */
  #split(record: WalRecord): WalRecord[] {
    if (record.type !== "entries") return [record];
    const max = this.#options.recordBytesMax;
    const out: WalRecord[] = [];
    let batch: Entry[] = [];
    let size = recordHeaderBytes + 12;
    for (const e of record.entries) {
      const add = 13 + e.data.length;
      if (recordHeaderBytes + 12 + add > max) {
        throw new StorageError(
          "ERR_TOO_LARGE",
          `entry ${e.index} of ${e.data.length} bytes exceeds recordBytesMax ${max}`,
        );
      }
      if (size + add > max && batch.length > 0) {
        out.push({ type: "entries", group: record.group, entries: batch });
        batch = [];
        size = recordHeaderBytes + 12;
      }
      batch.push(e);
      size += add;
    }
    if (batch.length > 0) out.push({ type: "entries", group: record.group, entries: batch });
    return out;
  }

  #overLimit(size: number): boolean {
    return this.#pendingBytes > 0 && this.#pendingBytes + size > this.#options.pendingBytesMax;
  }

  #checkUsable(): void {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#closed) throw new StorageError("ERR_CLOSED", "the WAL is closed");
  }

  #kick(): void {
    if (this.#flushRunning) return;
    this.#flushRunning = true;
    this.#flushing = this.#flushLoop();
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#pending.length > 0 && this.#failed === undefined) {
        await this.#flushOnce();
      }
    } finally {
      // Cleared in the same step that saw the queue empty (no await in between), so a write queued
      // after this point starts a new loop instead of waiting for one that has ended.
      this.#flushRunning = false;
    }
  }

  async #flushOnce(): Promise<void> {
    {
      const batch = this.#pending;
      this.#pending = [];
      this.#pendingBytes = 0;
      const bytes = concatBytes(batch.flatMap((p) => p.bytes));
      try {
        await this.#flushBatch(batch, bytes);
        for (const p of batch) p.resolve();
      } catch (error) {
        if (error instanceof StorageError && error.code === "ERR_NO_SPACE") {
          // Nothing of this batch counts; later queued records may build on it, so they go too.
          const dropped = [...batch, ...this.#pending];
          this.#pending = [];
          this.#pendingBytes = 0;
          this.#accepted = cloneStates(this.#durable);
          this.#noSpaceGeneration++;
          for (const p of dropped) p.reject(error);
        } else {
          this.#fail(error, batch);
        }
      }
    }
  }

  /** Writes one batch to the tail (rolling first if needed) and fdatasyncs it. */
  async #flushBatch(batch: readonly Pending[], bytes: Uint8Array): Promise<void> {
    if (
      this.#tailBytes > segmentHeaderBytes &&
      this.#tailBytes + bytes.length > this.#options.segmentBytesMax
    ) {
      await this.#roll();
    }
    const position = this.#tailBytes;
    try {
      await this.#tail.write(bytes, position);
    } catch (error) {
      if (errnoOf(error) !== "ENOSPC") throw error;
      // Cut whatever part did land, durably, so a crash cannot resurrect a rejected record.
      await this.#tail.truncate(position);
      await this.#tail.datasync();
      throw new StorageError("ERR_NO_SPACE", "WAL append: no space left on device", { cause: error });
    }
    // The tail is opened durable (O_DSYNC): the write that resolved is on disk, no separate
    // fdatasync needed. Any error but ENOSPC reached the caller above as fatal (fail-stop).
    this.#tailBytes = position + bytes.length;
    const segment = this.#segments[this.#segments.length - 1];
    assert(segment !== undefined, "the WAL always has a tail segment");
    for (const p of batch) {
      for (const record of p.records) {
        const problem = applyToGroupState(groupStateOf(this.#durable, record.group), record);
        assert(problem === undefined, `durable state diverged: ${problem ?? ""}`);
        if (record.type === "entries") {
          const last = record.entries[record.entries.length - 1]?.index ?? 0;
          segment.maxIndex.set(record.group, Math.max(segment.maxIndex.get(record.group) ?? 0, last));
        }
      }
    }
    this.#maybeRecordDurableEnd(segment.seq);
  }

  /**
   * Records the durable end in the side file once the log has grown enough since the last record,
   * in the background (never on the acknowledgement path), one write at a time. A failed write is a
   * failed disk (fail-stop), but for a full one: the next flush tries again.
   */
  #maybeRecordDurableEnd(seq: number): void {
    const every = this.#options.durableEndEveryBytes;
    if (every === undefined || this.#recordingEnd !== undefined || this.#closed) return;
    const end: DurableEnd = { seq, bytes: this.#tailBytes };
    const recorded = this.#recordedEnd;
    if (recorded !== undefined && recorded.seq === seq && end.bytes - recorded.bytes < Math.max(every, 1))
      return;
    this.#recordingEnd = writeDurableEnd(this.#fs, this.#dir, end).then(
      () => {
        this.#recordedEnd = end;
        this.#recordingEnd = undefined;
      },
      (error: unknown) => {
        this.#recordingEnd = undefined;
        if (errnoOf(error) !== "ENOSPC") this.#fail(error, []);
      },
    );
  }

  /** Starts a new tail segment; the old one is already durable (every flush syncs it). */
  async #roll(): Promise<void> {
    const last = this.#segments[this.#segments.length - 1];
    assert(last !== undefined, "the WAL always has a tail segment");
    const seg: Segment = { seq: last.seq + 1, name: segmentName(last.seq + 1), maxIndex: new Map() };
    const tail = await createSegment(this.#fs, this.#dir, seg, this.#durable);
    await this.#tail.close();
    this.#tail = tail;
    this.#tailBytes = await tail.size();
    this.#segments.push(seg);
  }

  async #deleteCovered(): Promise<void> {
    this.#checkUsable();
    // Corrupt data is evidence for repair: keep every segment while any corruption is known.
    if (this.#recovery.corruption.length > 0) return;
    let deleted = 0;
    // Only a prefix may go: a truncate-suffix record in a later segment must never lose its target.
    for (;;) {
      const oldest = this.#segments[0];
      if (oldest === undefined || this.#segments.length < 2) break;
      const covered = [...oldest.maxIndex].every(
        ([group, max]) => max <= groupStateOf(this.#durable, group).compactIndex,
      );
      if (!covered) break;
      await this.#fs.unlink(joinPath(this.#dir, oldest.name));
      this.#segments.shift();
      deleted++;
    }
    if (deleted > 0) await this.#fs.syncDir(this.#dir);
  }

  #fail(cause: unknown, batch: readonly Pending[]): void {
    if (this.#failed === undefined) {
      this.#failed = new StorageError(
        "ERR_STORAGE_FAILED",
        "WAL write or fdatasync failed; the node must stop",
        { cause },
      );
      this.#options.onFailure?.(this.#failed);
    }
    const failed = this.#failed;
    for (const p of [...batch, ...this.#pending]) p.reject(failed);
    this.#pending = [];
    this.#pendingBytes = 0;
  }
}

function cloneStates(states: ReadonlyMap<GroupId, GroupState>): Map<GroupId, GroupState> {
  return new Map([...states].map(([g, s]) => [g, { ...s }]));
}

function groupStateOf(states: Map<GroupId, GroupState>, group: GroupId): GroupState {
  let state = states.get(group);
  if (state === undefined) {
    state = emptyGroupState();
    states.set(group, state);
  }
  return state;
}

function checkpointOf(states: ReadonlyMap<GroupId, GroupState>): DiskRecord {
  const groups: GroupCheckpoint[] = [...states]
    .sort(([a], [b]) => a - b)
    .map(([group, s]) => ({ group, ...s }));
  return { type: "checkpoint", groups };
}

/**
 * Creates segment `seg` whole: header and checkpoint go to a temp file, which is synced, renamed and
 * made durable by syncing the directory, so a segment either exists complete or not at all.
 */
async function createSegment(
  fs: FileSystem,
  dir: string,
  seg: Segment,
  states: ReadonlyMap<GroupId, GroupState>,
): Promise<FileHandle> {
  const path = joinPath(dir, seg.name);
  const temp = `${path}.tmp`;
  const handle = await fs.open(temp, "create-or-truncate");
  try {
    await handle.write(concatBytes([encodeSegmentHeader(seg.seq), encodeRecord(checkpointOf(states))]), 0);
    await handle.datasync();
  } catch (error) {
    await handle.close();
    if (errnoOf(error) === "ENOSPC") {
      // Best effort: open() removes leftover temp files anyway.
      await fs.unlink(temp).catch(() => undefined);
      throw new StorageError("ERR_NO_SPACE", "WAL segment roll: no space left on device", { cause: error });
    }
    throw error;
  }
  await handle.close();
  await fs.rename(temp, path);
  await fs.syncDir(dir);
  // Every append to the tail is durable when its write resolves (O_DSYNC): one system call per flush.
  return fs.open(path, "read-write-durable");
}
