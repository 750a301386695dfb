// The WAL's durable-end watermark (docs/faults.md, "A truncated newest segment"). A WAL cut at a
// record boundary at the end of its newest segment looks like a clean end, and one cut in the middle
// of a record like a torn write: either way, entries that were durable (and acknowledged) would be
// gone without the node knowing. So the WAL records, in a small side file written atomically off
// the acknowledgement path, how far it was durable: the newest segment's sequence number and its
// durable length. At open, a newest segment that ends below the recorded end (or is older than
// the recorded one) proves that durable records were cut: the log is treated as damaged.
//
// The watermark trails the log (it is written after a flush, in the background, at most one write
// at a time, once the log has grown by `durableEndEveryBytes`): a cut of only the bytes written
// since the last watermark still passes as a clean end or a torn tail.
import { crc32 } from "../util/index.js";
import { writeFileAtomic } from "./atomic-file.js";
import { type FileSystem, joinPath } from "./file-system.js";
import { readIfPresent } from "./read-whole.js";

/** The side file's name in the WAL directory. */
export const durableEndFileName = "durable-end";

/** How far the WAL was durable: segment `seq` held at least `bytes` bytes. */
export interface DurableEnd {
  readonly seq: number;
  readonly bytes: number;
}

const encodedBytes = 20;

/** seq u64 | bytes u64 | CRC-32 of the first 16 bytes, little-endian. */
export function encodeDurableEnd(end: DurableEnd): Uint8Array {
  const out = new Uint8Array(encodedBytes);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(end.seq), true);
  view.setBigUint64(8, BigInt(end.bytes), true);
  view.setUint32(16, crc32(out.subarray(0, 16)), true);
  return out;
}

/** The watermark in `bytes`, or "corrupt" when its length or checksum is wrong. */
export function decodeDurableEnd(bytes: Uint8Array): DurableEnd | "corrupt" {
  if (bytes.length !== encodedBytes) return "corrupt";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(16, true) !== crc32(bytes.subarray(0, 16))) return "corrupt";
  return { seq: Number(view.getBigUint64(0, true)), bytes: Number(view.getBigUint64(8, true)) };
}

/** The watermark stored in WAL directory `dir`: undefined when there is none. */
export async function readDurableEnd(
  fs: FileSystem,
  dir: string,
): Promise<DurableEnd | "corrupt" | undefined> {
  const bytes = await readIfPresent(fs, joinPath(dir, durableEndFileName));
  return bytes === undefined ? undefined : decodeDurableEnd(bytes);
}

/** Stores `end` in WAL directory `dir`, whole or not at all (temp file, sync, rename, directory sync). */
export async function writeDurableEnd(fs: FileSystem, dir: string, end: DurableEnd): Promise<void> {
  const bytes = encodeDurableEnd(end);
  await writeFileAtomic(fs, joinPath(dir, durableEndFileName), (handle) => handle.write(bytes, 0));
}

/**
 * Why the recovered log proves that durable records were cut, or undefined: `newest` is the newest
 * segment on disk (undefined: none) and `newestBytes` its length up to its last whole record.
 */
export function durableEndLoss(
  recorded: DurableEnd | "corrupt" | undefined,
  newest: { readonly seq: number; readonly name: string } | undefined,
  newestBytes: number,
): string | undefined {
  if (recorded === undefined) return undefined;
  if (recorded === "corrupt") return `the WAL's ${durableEndFileName} record fails its checksum`;
  if (newest === undefined || newest.seq < recorded.seq)
    return `segment ${recorded.seq} held ${recorded.bytes} durable bytes, but the newest segment is ${newest?.seq ?? "none"}: durable records were cut`;
  if (newest.seq === recorded.seq && newestBytes < recorded.bytes)
    return `${newest.name} ends at ${newestBytes} bytes, below the ${recorded.bytes} bytes recorded durable: acknowledged records were cut`;
  return undefined;
}
