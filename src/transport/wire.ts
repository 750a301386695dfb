// Small big-endian readers and writers for the transport's own control payloads (handshake and
// snapshot frames). The Raft message codec is separate: it is plugged in through `Codec<M>`.
import { TransportError } from "./errors.js";

const U32 = 0x1_0000_0000;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Builds a payload from fixed-width fields; grows as needed (control payloads are small). */
export class ByteWriter {
  #bytes = new Uint8Array(64);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  #reserve(n: number): void {
    if (this.#length + n <= this.#bytes.length) return;
    const next = new Uint8Array(Math.max(this.#bytes.length * 2, this.#length + n));
    next.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends an unsigned byte. */
  u8(n: number): this {
    this.#reserve(1);
    this.#view.setUint8(this.#length, n);
    this.#length += 1;
    return this;
  }

  /** Appends an unsigned 16-bit integer. */
  u16(n: number): this {
    this.#reserve(2);
    this.#view.setUint16(this.#length, n);
    this.#length += 2;
    return this;
  }

  /** Appends an unsigned 32-bit integer. */
  u32(n: number): this {
    this.#reserve(4);
    this.#view.setUint32(this.#length, n);
    this.#length += 4;
    return this;
  }

  /** Appends a non-negative safe integer as 8 bytes (high word first). */
  u53(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative safe integer: ${n}`);
    return this.u32(Math.floor(n / U32)).u32(n % U32);
  }

  /** Appends raw bytes with a u32 length prefix. */
  bytes(data: Uint8Array): this {
    this.u32(data.length);
    this.#reserve(data.length);
    this.#bytes.set(data, this.#length);
    this.#length += data.length;
    return this;
  }

  /** Appends a UTF-8 string with a u16 length prefix, refusing one longer than `bytesMax`. */
  string(text: string, bytesMax: number): this {
    const data = encoder.encode(text);
    if (data.length > bytesMax || data.length > 0xffff) {
      throw new RangeError(`string of ${data.length} bytes exceeds ${bytesMax}`);
    }
    this.u16(data.length);
    this.#reserve(data.length);
    this.#bytes.set(data, this.#length);
    this.#length += data.length;
    return this;
  }

  /** The bytes written so far. */
  finish(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }
}

/**
 * Reads fields from an untrusted payload; any read past the end, bad UTF-8 or out-of-range value
 * throws ERR_FRAME_CORRUPT, so decoders can be written straight-line.
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  /** Reads `bytes` from the start. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(n: number, what: string): void {
    if (this.#at + n > this.#bytes.length) {
      throw new TransportError("ERR_FRAME_CORRUPT", `payload ends inside ${what}`);
    }
  }

  /** Reads an unsigned byte. */
  u8(what: string): number {
    this.#need(1, what);
    const n = this.#view.getUint8(this.#at);
    this.#at += 1;
    return n;
  }

  /** Reads an unsigned 16-bit integer. */
  u16(what: string): number {
    this.#need(2, what);
    const n = this.#view.getUint16(this.#at);
    this.#at += 2;
    return n;
  }

  /** Reads an unsigned 32-bit integer. */
  u32(what: string): number {
    this.#need(4, what);
    const n = this.#view.getUint32(this.#at);
    this.#at += 4;
    return n;
  }

  /** Reads an 8-byte non-negative integer that must be a safe integer. */
  u53(what: string): number {
    const high = this.u32(what);
    const low = this.u32(what);
    const n = high * U32 + low;
    if (!Number.isSafeInteger(n))
      throw new TransportError("ERR_FRAME_CORRUPT", `${what} is not a safe integer`);
    return n;
  }

  /** Reads u32-length-prefixed bytes, refusing more than `bytesMax`. The result aliases the payload. */
  bytes(what: string, bytesMax: number): Uint8Array {
    const length = this.u32(what);
    if (length > bytesMax)
      throw new TransportError("ERR_FRAME_CORRUPT", `${what} of ${length} bytes exceeds ${bytesMax}`);
    this.#need(length, what);
    const out = this.#bytes.subarray(this.#at, this.#at + length);
    this.#at += length;
    return out;
  }

  /** Reads the rest of the payload. The result aliases the payload. */
  rest(): Uint8Array {
    const out = this.#bytes.subarray(this.#at);
    this.#at = this.#bytes.length;
    return out;
  }

  /** Reads a u16-length-prefixed UTF-8 string, refusing more than `bytesMax` bytes. */
  string(what: string, bytesMax: number): string {
    const length = this.u16(what);
    if (length > bytesMax)
      throw new TransportError("ERR_FRAME_CORRUPT", `${what} of ${length} bytes exceeds ${bytesMax}`);
    this.#need(length, what);
    try {
      return decoder.decode(this.#bytes.subarray(this.#at, this.#at + length));
    } catch (cause) {
      throw new TransportError("ERR_FRAME_CORRUPT", `${what} is not valid UTF-8`, { cause });
    } finally {
      this.#at += length;
    }
  }

  /** Asserts the payload was consumed exactly: trailing bytes mean a peer we misunderstand. */
  end(what: string): void {
    if (this.#at !== this.#bytes.length) {
      throw new TransportError(
        "ERR_FRAME_CORRUPT",
        `${this.#bytes.length - this.#at} trailing bytes in ${what}`,
      );
    }
  }
}
