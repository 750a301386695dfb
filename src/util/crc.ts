import { crc32 as zlibCrc32 } from "node:zlib";

/**
 * CRC-32 (IEEE, as zlib computes it) of `data`, continuing from `initial` so a record's checksum can
 * be computed over several pieces without concatenating them.
 */
export function crc32(data: Uint8Array, initial = 0): number {
  return zlibCrc32(data, initial) >>> 0;
}

/** CRC-32 over several byte ranges in order, equal to the CRC of their concatenation. */
export function crc32Of(parts: readonly Uint8Array[]): number {
  let crc = 0;
  for (const part of parts) crc = zlibCrc32(part, crc);
  return crc >>> 0;
}
