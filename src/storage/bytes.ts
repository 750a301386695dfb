// Little helpers for fixed-width little-endian integers in byte arrays. Every id, index and term in
// Cairn is a safe integer (< 2^53), stored as a u64 in two u32 halves so no BigInt is needed.
import { assert } from "../util/index.js";

const U32 = 0x1_0000_0000;

/** Writes safe integer `n` as a little-endian u64 at `offset`. */
export function setU64(view: DataView, offset: number, n: number): void {
  // The message is built only on failure: this runs once per field of every record written.
  if (!(Number.isSafeInteger(n) && n >= 0)) assert(false, `u64 out of range: ${n}`);
  view.setUint32(offset, n % U32, true);
  view.setUint32(offset + 4, Math.floor(n / U32), true);
}

/** Reads a little-endian u64 at `offset`; undefined when it is not a safe integer (so corrupt). */
export function getU64(view: DataView, offset: number): number | undefined {
  const n = view.getUint32(offset + 4, true) * U32 + view.getUint32(offset, true);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A DataView over exactly the bytes of `bytes`. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The concatenation of `parts` in one array (the part itself when there is only one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  // One part needs no copy (the common case: one Ready, one record).
  if (parts.length === 1 && parts[0] !== undefined) return parts[0];
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether every byte of `bytes` from `from` on is zero. */
export function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
