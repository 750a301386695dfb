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
import { readWhole } from "./read-whole.js";
import { type CorruptionSite, StorageError } from "./storage-error.js";
import {
  type DiskRecord,
  decodeRecord,
  decodeSegmentHeader,
  encodeRecord,
  encodeSegmentHeader,
  type GroupCheckpoint,
  recordHeaderBytes,
  recordTypeCode,
  segmentHeaderBytes,
  type WalRecord,
} from "./wal-format.js";
import { applyToGroupState, emptyGroupState, type GroupState, RecoveredLog } from "./wal-group-state.js";

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
}

/** Defaults: 64 MiB segments, 8 MiB records (a 1 MiB value fits with room), 32 MiB queued. */
export const defaultWalOptions: WalOptions = {
  segmentBytesMax: 64 * 1024 * 1024,
  recordBytesMax: 8 * 1024 * 1024,
  pendingBytesMax: 32 * 1024 * 1024,
};

/** What recovery found for one group. */
export interface GroupRecovery {
  readonly group: GroupId;
  /** The log after the compaction point, consecutive, in order. */
  readonly entries: readonly Entry[];
  /** Index of the last entry, or the compaction point when `entries` is empty. */
  readonly lastIndex: LogIndex;
  /** A snapshot covers the entries through this index (0: none). */
  readonly compactIndex: LogIndex;
  readonly compactTerm: Term;
  /** Set when this group's log is corrupt: it must not start, vote or lead. */
  readonly corruption: (CorruptionSite & { readonly reason: string }) | undefined;
}

/**
 * A damaged tail that recovery truncated, and what it may have cost. A record that runs past the
 * end of the file is certainly torn: a write resolves (and anything it holds is acknowledged) only
 * once all of it and the file size are durable, and the WAL has one write in flight at a time. A
 * record whose bytes are all there but fail their checksum (or are zeros) may be a torn write, or
 * an acknowledged record damaged afterwards: recovery cannot tell, so it says how far the loss
 * may reach, and the group must not vote until a leader has given those entries back.
 */
export interface TornTail extends CorruptionSite {
  readonly bytesDropped: number;
  /** False only when the record was provably never written whole (it runs past the file's end). */
  readonly mayHaveBeenAcknowledged: boolean;
  /** The group whose record it was, when its header checksum held; undefined: any group. */
  readonly group: GroupId | undefined;
  /** The most entries the dropped bytes can have held (0 when none can have been acknowledged). */
  readonly entriesMax: number;
}

/** A corrupt spot found by recovery. */
export interface WalCorruption extends CorruptionSite {
  readonly reason: string;
}

/** What {@link Wal.open} found on disk. */
export interface WalRecovery {
  readonly groups: ReadonlyMap<GroupId, GroupRecovery>;
  /** A record cut short by a crash at the end of the last segment; it was truncated away. */
  readonly tornTail: TornTail | undefined;
  /** Every corrupt spot, in log order. */
  readonly corruption: readonly WalCorruption[];
  /**
   * True when corruption hit a place whose groups cannot be told apart (the middle of the last
   * segment): every group, even one not listed, must be treated as corrupt.
   */
  readonly allGroupsSuspect: boolean;
}

interface Segment {
  readonly seq: number;
  readonly name: string;
  /** The highest entry index each group wrote into this segment: deletable once compacted past. */
  readonly maxIndex: Map<GroupId, number>;
}

interface Pending {
  readonly records: readonly WalRecord[];
  readonly bytes: readonly Uint8Array[];
  readonly size: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const segmentName = (seq: number): string => `wal-${String(seq).padStart(16, "0")}.log`;
const segmentPattern = /^wal-(\d{16})\.log$/;

/** The error a group must answer with when its log is corrupt, or undefined when it may start. */
export function groupCorruptionError(recovery: WalRecovery, group: GroupId): StorageError | undefined {
  const found =
    recovery.groups.get(group)?.corruption ??
    (recovery.allGroupsSuspect ? recovery.corruption[0] : undefined);
  if (found === undefined) return undefined;
  const site = { file: found.file, offset: found.offset };
  return new StorageError(
    "ERR_GROUP_CORRUPT",
    `group ${group}: WAL corrupt at ${found.file}:${found.offset}`,
    {
      site,
      cause: walCorruptionError(found),
    },
  );
}

/** The ERR_WAL_CORRUPT error for one corrupt spot: which file, which byte offset, and why. */
export function walCorruptionError(corruption: WalCorruption): StorageError {
  return new StorageError(
    "ERR_WAL_CORRUPT",
    `${corruption.file} at offset ${corruption.offset}: ${corruption.reason}`,
    { site: { file: corruption.file, offset: corruption.offset } },
  );
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
    if (last === undefined) {
      const seg: Segment = { seq: 1, name: segmentName(1), maxIndex: new Map() };
      tail = await createSegment(fs, dir, seg, durable);
      found.segments.push(seg);
      tailBytes = await tail.size();
    } else {
      tail = await fs.open(joinPath(dir, last.name), "read-write-durable");
      if (found.recovery.tornTail !== undefined) {
        // Cut the torn record and make the cut durable before anything is appended after it.
        await tail.truncate(found.recovery.tornTail.offset);
        await tail.datasync();
      }
      tailBytes = await tail.size();
    }
    const wal = new Wal(fs, dir, opts, found.segments, tail, tailBytes, durable, found.recovery);
    return { wal, recovery: found.recovery };
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

interface Recovered {
  readonly logs: Map<GroupId, RecoveredLog>;
  readonly segments: Segment[];
  readonly recovery: WalRecovery;
}

/** Replays every segment in order, rebuilding each group's log and classifying every bad spot. */
async function recover(
  fs: FileSystem,
  dir: string,
  names: readonly string[],
  recordBytesMax: number,
): Promise<Recovered> {
  const logs = new Map<GroupId, RecoveredLog>();
  const corrupt = new Map<GroupId, WalCorruption>();
  const corruption: WalCorruption[] = [];
  const segments: Segment[] = [];
  let tornTail: WalRecovery["tornTail"];
  let allGroupsSuspect = false;
  /** Set after corruption in a non-last segment: each group's record count at that point. */
  let suspect: { counts: Map<GroupId, number>; site: WalCorruption } | undefined;
  let started = false;
  let expectedSeq: number | undefined;

  const logOf = (group: GroupId): RecoveredLog => {
    let log = logs.get(group);
    if (log === undefined) {
      log = new RecoveredLog(group, emptyGroupState());
      logs.set(group, log);
    }
    return log;
  };
  const markCorrupt = (group: GroupId, site: WalCorruption): void => {
    if (!corrupt.has(group)) corrupt.set(group, site);
  };

  const sorted = [...names].sort();
  // Read the next segment while this one is decoded: disk and checksum work overlap.
  let nextRead: Promise<Uint8Array> | undefined =
    sorted[0] === undefined ? undefined : readWhole(fs, joinPath(dir, sorted[0]));
  for (const [i, name] of sorted.entries()) {
    const isLast = i === sorted.length - 1;
    const seq = Number(segmentPattern.exec(name)?.[1]);
    const segment: Segment = { seq, name, maxIndex: new Map() };
    segments.push(segment);
    const fail = (offset: number, reason: string): void => {
      const site = { file: name, offset, reason };
      corruption.push(site);
      if (isLast) allGroupsSuspect = true;
      else if (suspect === undefined)
        suspect = { counts: new Map([...logs].map(([g, l]) => [g, l.state.recordCount])), site };
    };
    if (expectedSeq !== undefined && seq !== expectedSeq) fail(0, `segment ${expectedSeq} is missing`);
    expectedSeq = seq + 1;
    assert(nextRead !== undefined, "a read is started for every segment");
    const bytes = await nextRead;
    const following = sorted[i + 1];
    nextRead = following === undefined ? undefined : readWhole(fs, joinPath(dir, following));
    // Observed when awaited next round; this keeps an early failure from being an unhandled rejection.
    nextRead?.catch(() => undefined);
    const header = decodeSegmentHeader(bytes);
    if (!header.ok || header.seq !== seq) {
      fail(0, header.ok ? `header names segment ${header.seq}` : header.reason);
      continue;
    }
    let offset = segmentHeaderBytes;
    let first = true;
    while (offset < bytes.length) {
      const result = decodeRecord(bytes, offset, recordBytesMax);
      if (result.kind !== "ok") {
        if (isLast && isTornTail(bytes, offset, result, recordBytesMax)) {
          tornTail = { file: name, offset, ...tailLoss(bytes, offset, result) };
        } else {
          fail(
            offset,
            result.kind === "short" ? "record runs past the end of a sealed segment" : result.reason,
          );
        }
        break;
      }
      const record = result.record;
      if (first !== (record.type === "checkpoint")) {
        fail(
          offset,
          first ? "segment does not begin with a checkpoint" : "checkpoint in the middle of a segment",
        );
        break;
      }
      first = false;
      if (record.type === "checkpoint") {
        for (const cp of record.groups) {
          const state = {
            lastIndex: cp.lastIndex,
            compactIndex: cp.compactIndex,
            compactTerm: cp.compactTerm,
            recordCount: cp.recordCount,
          };
          const log = logs.get(cp.group);
          const site = { file: name, offset, reason: "" };
          if (suspect !== undefined) {
            // A group whose record count did not change across the corrupt span lost nothing there.
            if ((suspect.counts.get(cp.group) ?? 0) !== cp.recordCount) {
              markCorrupt(cp.group, suspect.site);
              logs.set(cp.group, new RecoveredLog(cp.group, state));
            } else if (!started) {
              logs.set(cp.group, new RecoveredLog(cp.group, state));
            }
          } else if (!started) {
            logs.set(cp.group, new RecoveredLog(cp.group, state));
          } else if (
            log === undefined ||
            log.state.recordCount !== cp.recordCount ||
            log.state.lastIndex !== cp.lastIndex ||
            log.state.compactIndex !== cp.compactIndex
          ) {
            markCorrupt(cp.group, { ...site, reason: "checkpoint disagrees with the records before it" });
            logs.set(cp.group, new RecoveredLog(cp.group, state));
          }
        }
        started = true;
        suspect = undefined;
      } else {
        const log = logOf(record.group);
        if (corrupt.has(record.group)) {
          log.state.recordCount++;
        } else {
          const problem = log.apply(record);
          if (problem !== undefined) {
            markCorrupt(record.group, { file: name, offset, reason: problem });
            log.state.recordCount++;
          } else if (record.type === "entries") {
            const last = record.entries[record.entries.length - 1]?.index ?? 0;
            segment.maxIndex.set(record.group, Math.max(segment.maxIndex.get(record.group) ?? 0, last));
          }
        }
      }
      offset = result.next;
    }
    if (first && offset >= bytes.length && tornTail === undefined) fail(offset, "segment has no checkpoint");
  }

  const groups = new Map<GroupId, GroupRecovery>();
  for (const [group, log] of logs) {
    // Entries between the compaction point and the first held entry lived in deleted segments:
    // only a snapshot may cover them, so a hole there means data is missing.
    if (log.base > log.state.compactIndex && !corrupt.has(group)) {
      markCorrupt(group, {
        file: sorted[0] ?? "",
        offset: 0,
        reason: `entries ${log.state.compactIndex + 1}..${log.base} are missing`,
      });
    }
    const site = corrupt.get(group);
    groups.set(group, {
      group,
      entries: log.entries,
      lastIndex: logIndex(log.state.lastIndex),
      compactIndex: logIndex(log.state.compactIndex),
      compactTerm: term(log.state.compactTerm),
      corruption: site,
    });
  }
  for (const site of corrupt.values()) if (!corruption.includes(site)) corruption.push(site);
  return { logs, segments, recovery: { groups, tornTail, corruption, allGroupsSuspect } };
}

/** An entries payload: first index u64 | count u32, then per entry at least term u64 | kind u8 | len u32. */
const entriesPayloadHeaderBytes = 12;
const entryBytesMin = 13;

/** What a torn tail at `offset` may have lost (see {@link TornTail}). */
function tailLoss(
  bytes: Uint8Array,
  offset: number,
  result: { kind: "short" } | { kind: "bad"; headerValid: boolean },
): Omit<TornTail, "file" | "offset"> {
  const bytesDropped = bytes.length - offset;
  if (result.kind === "short") {
    return { bytesDropped, mayHaveBeenAcknowledged: false, group: undefined, entriesMax: 0 };
  }
  const entriesIn = (payloadBytes: number) =>
    Math.max(0, Math.floor((payloadBytes - entriesPayloadHeaderBytes) / entryBytesMin));
  if (!result.headerValid) {
    // Nothing of the header can be trusted: the record may have filled every dropped byte.
    const entriesMax = entriesIn(bytesDropped - recordHeaderBytes);
    return { bytesDropped, mayHaveBeenAcknowledged: true, group: undefined, entriesMax };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, recordHeaderBytes);
  const type = view.getUint8(12);
  const group = groupId(Number(view.getBigUint64(16, true)));
  const entriesMax = type === recordTypeCode.entries ? entriesIn(view.getUint32(4, true)) : 0;
  return { bytesDropped, mayHaveBeenAcknowledged: true, group, entriesMax };
}

/**
 * Whether a bad record at `offset` in the last segment is a torn tail (a crash mid-write) rather than
 * corruption: the bytes end inside it, or it is followed by nothing that looks like a record.
 */
function isTornTail(
  bytes: Uint8Array,
  offset: number,
  result: { kind: "short" } | { kind: "bad"; headerValid: boolean },
  recordBytesMax: number,
): boolean {
  if (result.kind === "short") return true;
  if (!result.headerValid) return bytes.subarray(offset).every((b) => b === 0);
  const length = new DataView(bytes.buffer, bytes.byteOffset + offset + 4, 4).getUint32(0, true);
  const end = offset + recordHeaderBytes + length;
  if (end >= bytes.length) return true;
  // A record with a valid header after this one proves the bad one was written whole, then damaged.
  const next = decodeRecord(bytes, end, recordBytesMax);
  return !(next.kind === "ok" || (next.kind === "bad" && next.headerValid));
}
