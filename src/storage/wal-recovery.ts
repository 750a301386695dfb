// WAL recovery: what Wal.open reads back before the log accepts writes. It replays every segment
// in order, rebuilding each group's log, tells a torn tail (a crash mid-write at the end of the last
// segment, cut away at open) from corruption (reported per group, so only that group stays down),
// and names each bad spot by file and offset.
import type { Entry, GroupId, LogIndex, Term } from "../raft/index.js";
import { groupId, logIndex, term } from "../raft/index.js";
import { assert } from "../util/index.js";
import type { FileHandle, FileSystem } from "./file-system.js";
import { joinPath } from "./file-system.js";
import { readWhole } from "./read-whole.js";
import { type CorruptionSite, StorageError } from "./storage-error.js";
import {
  decodeRecord,
  decodeSegmentHeader,
  recordHeaderBytes,
  recordTypeCode,
  segmentHeaderBytes,
} from "./wal-format.js";
import { emptyGroupState, RecoveredLog } from "./wal-group-state.js";
import type { TailLost } from "./wal-tail-lost.js";

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
  /**
   * Per group, the highest index an entry cut from its tail (now or at an earlier open) can have
   * had, while its log has not reached it again (wal-tail-lost.ts): the group must not vote until
   * a leader has given it a log past that.
   */
  readonly tailLost: TailLost;
}

/** A segment file of the log. */
export interface Segment {
  readonly seq: number;
  readonly name: string;
  /** The highest entry index each group wrote into this segment: deletable once compacted past. */
  readonly maxIndex: Map<GroupId, number>;
}

/** The file name of segment `seq`. */
export const segmentName = (seq: number): string => `wal-${String(seq).padStart(16, "0")}.log`;
/** Matches a segment file name; the group is its sequence number. */
export const segmentPattern = /^wal-(\d{16})\.log$/;

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

/** What {@link recover} rebuilt: each group's log, the segments in order and the report. */
export interface Recovered {
  readonly logs: Map<GroupId, RecoveredLog>;
  readonly segments: Segment[];
  readonly recovery: WalRecovery;
}

/** Replays every segment in order, rebuilding each group's log and classifying every bad spot. */
export async function recover(
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
  return {
    logs,
    segments,
    recovery: { groups, tornTail, corruption, allGroupsSuspect, tailLost: new Map() },
  };
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

/**
 * Opens the last segment for appending after recovery: a torn record at its end is cut, and the cut
 * made durable, before anything is appended after it. Answers the handle and the segment's size.
 */
export async function openTail(
  fs: FileSystem,
  dir: string,
  last: Segment,
  tornTail: TornTail | undefined,
): Promise<{ readonly tail: FileHandle; readonly tailBytes: number }> {
  const tail = await fs.open(joinPath(dir, last.name), "read-write-durable");
  if (tornTail !== undefined) {
    await tail.truncate(tornTail.offset);
    await tail.datasync();
  }
  return { tail, tailBytes: await tail.size() };
}
