// The byte layout of WAL segments and records (drawn in docs/design.md, "Storage"). Encoding is pure
// and decoding never throws: it says "ok", "short" (the bytes end inside the record: a torn tail
// candidate) or "bad" (a checksum or framing failure), and recovery decides what that means.
import {
  type Entry,
  type EntryKind,
  type GroupId,
  groupId,
  type LogIndex,
  logIndex,
  type Term,
  term,
} from "../raft/index.js";
import { assert, assertNever, crc32 } from "../util/index.js";
import { getU64, setU64, viewOf } from "./bytes.js";

/** "CAIRNWAL" in ASCII: the first 8 bytes of every segment. */
export const segmentMagic = new Uint8Array([0x43, 0x41, 0x49, 0x52, 0x4e, 0x57, 0x41, 0x4c]);
/** The segment format version this code writes and reads. */
export const segmentVersion = 1;
/** Bytes of the segment header: magic 8, version u32, sequence u64, crc u32. */
export const segmentHeaderBytes = 24;
/** Bytes of a record header: header crc u32, payload length u32, payload crc u32, type u8, 3 zero, group u64. */
export const recordHeaderBytes = 24;
const entryHeaderBytes = 13;
const checkpointGroupBytes = 40;

/** The numeric record types on disk. Never renumber: this is the file format. */
export const recordTypeCode = { entries: 1, "truncate-suffix": 2, compact: 3, checkpoint: 4 } as const;

/** A record a caller asks the WAL to write. */
export type WalRecord =
  /** A batch of consecutive entries of one group; an overlap with the log replaces its suffix (Raft §5.3). */
  | { readonly type: "entries"; readonly group: GroupId; readonly entries: readonly Entry[] }
  /** Drops the group's entries from `fromIndex` on: a conflicting suffix (Raft §5.3). */
  | { readonly type: "truncate-suffix"; readonly group: GroupId; readonly fromIndex: LogIndex }
  /** A snapshot covers the group's entries through `throughIndex` (Raft §7): they may be deleted. */
  | {
      readonly type: "compact";
      readonly group: GroupId;
      readonly throughIndex: LogIndex;
      readonly term: Term;
    };

/** Where one group's log stood when a segment began: written first in every segment. */
export interface GroupCheckpoint {
  readonly group: GroupId;
  readonly lastIndex: number;
  readonly compactIndex: number;
  readonly compactTerm: number;
  /** Records of this group ever written, so recovery can tell which groups a corrupt span touched. */
  readonly recordCount: number;
}

/** Any record found on disk. */
export type DiskRecord =
  | WalRecord
  | { readonly type: "checkpoint"; readonly groups: readonly GroupCheckpoint[] };

/** The result of decoding one record at an offset. */
export type DecodeResult =
  | { readonly kind: "ok"; readonly record: DiskRecord; readonly next: number }
  | { readonly kind: "short" }
  | { readonly kind: "bad"; readonly reason: string; readonly headerValid: boolean };

/** Encodes a segment header for sequence number `seq`. */
export function encodeSegmentHeader(seq: number): Uint8Array {
  const out = new Uint8Array(segmentHeaderBytes);
  const view = viewOf(out);
  out.set(segmentMagic, 0);
  view.setUint32(8, segmentVersion, true);
  setU64(view, 12, seq);
  view.setUint32(20, crc32(out.subarray(0, 20)), true);
  return out;
}

/** Decodes a segment header: its sequence number, or why it is bad. */
export function decodeSegmentHeader(
  bytes: Uint8Array,
): { ok: true; seq: number } | { ok: false; reason: string } {
  if (bytes.length < segmentHeaderBytes) return { ok: false, reason: "segment shorter than its header" };
  const view = viewOf(bytes);
  if (view.getUint32(20, true) !== crc32(bytes.subarray(0, 20)))
    return { ok: false, reason: "segment header checksum" };
  for (let i = 0; i < segmentMagic.length; i++) {
    if (bytes[i] !== segmentMagic[i]) return { ok: false, reason: "segment magic" };
  }
  const version = view.getUint32(8, true);
  if (version !== segmentVersion) return { ok: false, reason: `segment version ${version}` };
  const seq = getU64(view, 12);
  if (seq === undefined) return { ok: false, reason: "segment sequence" };
  return { ok: true, seq };
}

/** The payload size of `record` in bytes. */
function payloadBytes(record: DiskRecord): number {
  switch (record.type) {
    case "entries": {
      let size = 12;
      for (const e of record.entries) size += entryHeaderBytes + e.data.length;
      return size;
    }
    case "truncate-suffix":
      return 8;
    case "compact":
      return 16;
    case "checkpoint":
      return 4 + checkpointGroupBytes * record.groups.length;
    default:
      return assertNever(record, "record");
  }
}

/** The encoded size of `record`, header included. */
export function encodedBytes(record: DiskRecord): number {
  return recordHeaderBytes + payloadBytes(record);
}

/**
 * Encodes `record` into a new array: header then payload, with both checksums computed here, before
 * anything reaches the disk.
 */
export function encodeRecord(record: DiskRecord): Uint8Array {
  const size = encodedBytes(record);
  const out = new Uint8Array(size);
  const view = viewOf(out);
  const p = recordHeaderBytes;
  switch (record.type) {
    case "entries": {
      const first = record.entries[0];
      assert(first !== undefined, "an entries record holds at least one entry");
      setU64(view, p, first.index);
      view.setUint32(p + 8, record.entries.length, true);
      let at = p + 12;
      record.entries.forEach((e, i) => {
        // Invariant: the entries of one record are consecutive.
        if (e.index !== first.index + i) assert(false, `entries not consecutive at ${e.index}`);
        setU64(view, at, e.term);
        out[at + 8] = e.kind === "normal" ? 0 : 1;
        view.setUint32(at + 9, e.data.length, true);
        out.set(e.data, at + entryHeaderBytes);
        at += entryHeaderBytes + e.data.length;
      });
      break;
    }
    case "truncate-suffix":
      setU64(view, p, record.fromIndex);
      break;
    case "compact":
      setU64(view, p, record.throughIndex);
      setU64(view, p + 8, record.term);
      break;
    case "checkpoint": {
      view.setUint32(p, record.groups.length, true);
      let at = p + 4;
      for (const g of record.groups) {
        setU64(view, at, g.group);
        setU64(view, at + 8, g.lastIndex);
        setU64(view, at + 16, g.compactIndex);
        setU64(view, at + 24, g.compactTerm);
        setU64(view, at + 32, g.recordCount);
        at += checkpointGroupBytes;
      }
      break;
    }
    default:
      assertNever(record, "record");
  }
  view.setUint32(4, size - recordHeaderBytes, true);
  view.setUint32(8, crc32(out.subarray(recordHeaderBytes)), true);
  out[12] = recordTypeCode[record.type];
  setU64(view, 16, record.type === "checkpoint" ? 0 : record.group);
  view.setUint32(0, crc32(out.subarray(4, recordHeaderBytes)), true);
  return out;
}

/**
 * Decodes the record at `offset` of `bytes` (which end at the file's end), verifying both checksums.
 * `recordBytesMax` bounds a payload, so a corrupt length can never make recovery allocate wildly.
 */
export function decodeRecord(bytes: Uint8Array, offset: number, recordBytesMax: number): DecodeResult {
  if (bytes.length - offset < recordHeaderBytes) return { kind: "short" };
  const view = viewOf(bytes);
  const header = bytes.subarray(offset, offset + recordHeaderBytes);
  if (view.getUint32(offset, true) !== crc32(header.subarray(4))) {
    return { kind: "bad", reason: "record header checksum", headerValid: false };
  }
  const length = view.getUint32(offset + 4, true);
  const type = bytes[offset + 12];
  const group = getU64(view, offset + 16);
  if (length > recordBytesMax || group === undefined || bytes[offset + 13] !== 0) {
    return { kind: "bad", reason: "record header fields", headerValid: false };
  }
  const start = offset + recordHeaderBytes;
  const end = start + length;
  if (end > bytes.length) return { kind: "short" };
  const payload = bytes.subarray(start, end);
  if (view.getUint32(offset + 8, true) !== crc32(payload)) {
    return { kind: "bad", reason: "record payload checksum", headerValid: true };
  }
  const record = decodePayload(type, groupId(group), payload);
  if (record === undefined)
    return { kind: "bad", reason: `record type ${String(type)} payload`, headerValid: true };
  return { kind: "ok", record, next: end };
}

function decodePayload(
  type: number | undefined,
  group: GroupId,
  payload: Uint8Array,
): DiskRecord | undefined {
  const view = viewOf(payload);
  switch (type) {
    case recordTypeCode.entries: {
      if (payload.length < 12) return undefined;
      const first = getU64(view, 0);
      const count = view.getUint32(8, true);
      if (first === undefined || count === 0) return undefined;
      const entries: Entry[] = [];
      let at = 12;
      for (let i = 0; i < count; i++) {
        if (at + entryHeaderBytes > payload.length) return undefined;
        const t = getU64(view, at);
        const kindByte = payload[at + 8];
        const length = view.getUint32(at + 9, true);
        const end = at + entryHeaderBytes + length;
        if (t === undefined || (kindByte !== 0 && kindByte !== 1) || end > payload.length) return undefined;
        const kind: EntryKind = kindByte === 0 ? "normal" : "conf-change";
        entries.push({
          term: term(t),
          index: logIndex(first + i),
          kind,
          data: payload.subarray(at + entryHeaderBytes, end),
        });
        at = end;
      }
      return at === payload.length ? { type: "entries", group, entries } : undefined;
    }
    case recordTypeCode["truncate-suffix"]: {
      const from = payload.length === 8 ? getU64(view, 0) : undefined;
      return from === undefined || from < 1
        ? undefined
        : { type: "truncate-suffix", group, fromIndex: logIndex(from) };
    }
    case recordTypeCode.compact: {
      const through = payload.length === 16 ? getU64(view, 0) : undefined;
      const t = payload.length === 16 ? getU64(view, 8) : undefined;
      if (through === undefined || t === undefined) return undefined;
      return { type: "compact", group, throughIndex: logIndex(through), term: term(t) };
    }
    case recordTypeCode.checkpoint: {
      if (payload.length < 4) return undefined;
      const count = view.getUint32(0, true);
      if (payload.length !== 4 + count * checkpointGroupBytes) return undefined;
      const groups: GroupCheckpoint[] = [];
      for (let i = 0; i < count; i++) {
        const at = 4 + i * checkpointGroupBytes;
        const fields = [0, 8, 16, 24, 32].map((o) => getU64(view, at + o));
        const [g, lastIndex, compactIndex, compactTerm, recordCount] = fields;
        if (
          g === undefined ||
          lastIndex === undefined ||
          compactIndex === undefined ||
          compactTerm === undefined ||
          recordCount === undefined
        ) {
          return undefined;
        }
        groups.push({ group: groupId(g), lastIndex, compactIndex, compactTerm, recordCount });
      }
      return { type: "checkpoint", groups };
    }
    default:
      return undefined;
  }
}
