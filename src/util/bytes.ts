// A small binary codec toolkit: a growable writer and a bounds-checked reader with unsigned
// varints, fixed-width integers and length-prefixed bytes. Pure (no node: imports), so every layer
// (the Raft core included) can use it for compact, hand-written encodings.

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Input that does not decode: truncated, over-long or malformed. Stable code `ERR_DECODE`. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
  readonly code = "ERR_DECODE";
}

/** A finished writer's buffer: never written to, since any write first grows the buffer. */
const emptyBytes = new Uint8Array(0);

/**
 * Builds a byte string piece by piece, growing its buffer geometrically. Integers are written byte
 * by byte rather than through a DataView: writers are made per record and per key on the hot
 * paths, and a view is one more object to allocate and collect each time.
 */
export class ByteWriter {
  #buffer: Uint8Array;
  #length = 0;

  /** Creates a writer with room for `initialBytes` before it first grows. */
  constructor(initialBytes = 64) {
    this.#buffer = new Uint8Array(Math.max(8, initialBytes));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    let size = Math.max(8, this.#buffer.length * 2);
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  /** Appends one byte (0..255). */
  u8(value: number): this {
    this.#reserve(1);
    this.#buffer[this.#length++] = value & 0xff;
    return this;
  }

  #u32At(at: number, value: number): void {
    const b = this.#buffer;
    b[at] = value >>> 24;
    b[at + 1] = (value >>> 16) & 0xff;
    b[at + 2] = (value >>> 8) & 0xff;
    b[at + 3] = value & 0xff;
  }

  /** Appends a 32-bit unsigned integer, big-endian. */
  u32(value: number): this {
    this.#reserve(4);
    this.#u32At(this.#length, value >>> 0);
    this.#length += 4;
    return this;
  }

  /** Appends a non-negative safe integer as 8 bytes, big-endian (so encoded keys sort numerically). */
  u64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 out of range: ${value}`);
    this.#reserve(8);
    this.#u32At(this.#length, Math.floor(value / 0x1_0000_0000));
    this.#u32At(this.#length + 4, value >>> 0);
    this.#length += 8;
    return this;
  }

  /** Appends a non-negative safe integer as an unsigned LEB128 varint (1 to 8 bytes). */
  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
    this.#reserve(8);
    let rest = value;
    while (rest >= 0x80) {
      this.#buffer[this.#length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#length++] = rest;
    return this;
  }

  /** Appends raw bytes with no length prefix. */
  raw(bytes: Uint8Array): this {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
    return this;
  }

  /** Appends a varint length followed by the bytes. */
  bytes(bytes: Uint8Array): this {
    return this.varint(bytes.length).raw(bytes);
  }

  /** Appends a UTF-8 string with a varint byte-length prefix. */
  string(value: string): this {
    return this.bytes(textEncoder.encode(value));
  }

  /**
   * The bytes written. Ends the writer, which hands over its buffer, so the writer must not be used
   * again. No one else writes to the result's memory.
   */
  finish(): Uint8Array {
    const buffer = this.#buffer;
    const length = this.#length;
    this.#buffer = emptyBytes;
    this.#length = 0;
    if (length === buffer.length) return buffer;
    // V8 keeps arrays of up to 64 bytes on its heap: a small copy is cheaper than a view, which
    // would move the buffer off the heap. A larger buffer is off the heap already; a view of it
    // saves a copy unless much of it is unused.
    if (length <= 64 || buffer.length - length > length >>> 3) return buffer.slice(0, length);
    return buffer.subarray(0, length);
  }
}

/** Reads what a {@link ByteWriter} wrote; every read checks bounds and throws {@link DecodeError}. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  #offset = 0;

  /** Creates a reader over `bytes` (not copied). */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** The big-endian u32 at `at`, bounds already checked. */
  #u32At(at: number): number {
    const b = this.#bytes;
    return (
      (b[at] ?? 0) * 0x100_0000 + (((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0))
    );
  }

  /** The read position. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  #need(count: number, what: string): void {
    if (this.remaining < count) {
      throw new DecodeError(
        `truncated ${what}: need ${count} bytes at offset ${this.#offset}, have ${this.remaining}`,
      );
    }
  }

  /** Reads one byte. */
  u8(): number {
    this.#need(1, "u8");
    return this.#bytes[this.#offset++] ?? 0;
  }

  /** Reads a big-endian 32-bit unsigned integer. */
  u32(): number {
    this.#need(4, "u32");
    const value = this.#u32At(this.#offset);
    this.#offset += 4;
    return value;
  }

  /** Reads an 8-byte big-endian integer; fails if it exceeds 2^53 - 1. */
  u64(): number {
    this.#need(8, "u64");
    const high = this.#u32At(this.#offset);
    const low = this.#u32At(this.#offset + 4);
    if (high > 0x1f_ffff) throw new DecodeError(`u64 at offset ${this.#offset} exceeds 2^53 - 1`);
    this.#offset += 8;
    return high * 0x1_0000_0000 + low;
  }

  /** Reads an unsigned LEB128 varint of at most 8 bytes whose value is a safe integer. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      this.#need(1, "varint");
      const byte = this.#bytes[this.#offset++] ?? 0;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) throw new DecodeError("varint exceeds 2^53 - 1");
        return value;
      }
      scale *= 0x80;
    }
    throw new DecodeError(`varint longer than 8 bytes at offset ${this.#offset}`);
  }

  /** Reads `count` raw bytes (a view, not a copy). */
  raw(count: number): Uint8Array {
    this.#need(count, "bytes");
    const out = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return out;
  }

  /** Reads a varint-length-prefixed byte string, refusing one longer than `max` bytes. */
  bytes(max = Number.MAX_SAFE_INTEGER): Uint8Array {
    const length = this.varint();
    if (length > max) throw new DecodeError(`length ${length} exceeds the limit ${max}`);
    return this.raw(length);
  }

  /** Reads a varint-length-prefixed UTF-8 string; invalid UTF-8 is a DecodeError. */
  string(max = Number.MAX_SAFE_INTEGER): string {
    const bytes = this.bytes(max);
    try {
      return textDecoder.decode(bytes);
    } catch (cause) {
      throw new DecodeError("invalid UTF-8", { cause });
    }
  }

  /** Fails unless every byte was read: trailing garbage means the input is not what it claims. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} unexpected trailing bytes`);
  }
}

/** Encodes a string as UTF-8. */
export function utf8(value: string): Uint8Array {
  return textEncoder.encode(value);
}

/** Compares two byte strings lexicographically (negative, zero or positive, like a sort comparator). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Whether two byte strings are equal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}
