// The WAL's record of a cut tail that may have held acknowledged entries (docs/faults.md, "A torn
// tail"). A bad record at the very end of the newest segment reads as a torn write and is cut, but a
// record written whole and damaged later reads the same: the entries it held may have been
// acknowledged, so the group withholds its vote until a leader has given it a log past them
// (PersistedState.tailLostIndexMax). The cut is durable at once; the knowledge that it may have
// lost acknowledged entries must be too, or a second open (the start-time damage check opens the
// WAL before the node does, and a crash may come before the leader resent them) finds a clean
// tail and votes on a log shorter than it promised. So before the cut, the WAL stores, per group,
// the highest index the cut can have held, in this small side file (written whole or not at all).
// An entry is forgotten at an open that finds the group's log past it: only a leader can have
// appended there, since the group neither votes nor campaigns until then.
import { crc32 } from "../util/index.js";
import { removeFileDurably, writeFileAtomic } from "./atomic-file.js";
import { type FileSystem, joinPath } from "./file-system.js";
import { readIfPresent } from "./read-whole.js";

/** The side file's name in the WAL directory. */
export const tailLostFileName = "tail-lost";

/** Per group, the highest index an entry cut from its tail can have had. */
export type TailLost = ReadonlyMap<number, number>;

const pairBytes = 16;

/** count u32 | (group u64 | indexMax u64) per group | CRC-32 of what precedes, little-endian. */
export function encodeTailLost(lost: TailLost): Uint8Array {
  const out = new Uint8Array(4 + lost.size * pairBytes + 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, lost.size, true);
  let at = 4;
  for (const [group, indexMax] of [...lost].sort(([a], [b]) => a - b)) {
    view.setBigUint64(at, BigInt(group), true);
    view.setBigUint64(at + 8, BigInt(indexMax), true);
    at += pairBytes;
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

/** The record in `bytes`, or "corrupt" when its length or checksum is wrong. */
export function decodeTailLost(bytes: Uint8Array): TailLost | "corrupt" {
  if (bytes.length < 8) return "corrupt";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const count = view.getUint32(0, true);
  if (bytes.length !== 4 + count * pairBytes + 4) return "corrupt";
  const end = bytes.length - 4;
  if (view.getUint32(end, true) !== crc32(bytes.subarray(0, end))) return "corrupt";
  const lost = new Map<number, number>();
  for (let at = 4; at < end; at += pairBytes)
    lost.set(Number(view.getBigUint64(at, true)), Number(view.getBigUint64(at + 8, true)));
  return lost;
}

/** The record stored in WAL directory `dir`: an empty map when there is none. */
export async function readTailLost(fs: FileSystem, dir: string): Promise<TailLost | "corrupt"> {
  const bytes = await readIfPresent(fs, joinPath(dir, tailLostFileName));
  return bytes === undefined ? new Map() : decodeTailLost(bytes);
}

/**
 * Stores `lost` in WAL directory `dir`, whole or not at all (temp file, sync, rename, directory
 * sync); an empty record removes the file (durably).
 */
export async function writeTailLost(fs: FileSystem, dir: string, lost: TailLost): Promise<void> {
  const path = joinPath(dir, tailLostFileName);
  if (lost.size === 0) return await removeFileDurably(fs, path);
  const bytes = encodeTailLost(lost);
  await writeFileAtomic(fs, path, (handle) => handle.write(bytes, 0));
}

/**
 * What the record must hold after an open: the `stored` entries and those of a `torn` tail about to
 * be cut (each group it can have held: lastIndex, before the cut, plus the most entries it can have
 * held), keeping per group the highest bound and forgetting each bound the group's log has reached
 * (`lastIndexOf`).
 */
export function nextTailLost(
  stored: TailLost,
  torn: { readonly groups: readonly number[]; readonly entriesMax: number } | undefined,
  lastIndexOf: (group: number) => number,
): TailLost {
  const next = new Map(stored);
  for (const group of torn?.groups ?? [])
    next.set(group, Math.max(next.get(group) ?? 0, lastIndexOf(group) + (torn?.entriesMax ?? 0)));
  for (const [group, indexMax] of next) if (lastIndexOf(group) >= indexMax) next.delete(group);
  return next;
}

/** Whether two records hold the same bounds. */
export function sameTailLost(a: TailLost, b: TailLost): boolean {
  return a.size === b.size && [...a].every(([group, indexMax]) => b.get(group) === indexMax);
}
