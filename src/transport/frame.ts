// The frame layer: every byte between two Cairn nodes travels inside a frame with a fixed 16-byte
// header, so a reader always knows how much to expect before it buffers anything.
//
//   0      1        2      3      4            8              12             16
//   +------+--------+------+------+------------+--------------+--------------+----------------+
//   | 0xCA | version| type | flags| group u32  | length u32   | crc32 u32    | payload ...    |
//   +------+--------+------+------+------------+--------------+--------------+----------------+
//
// All integers are big-endian. The CRC covers header bytes 0..11 and then the payload, so a flipped
// bit in any header field (type, group, length) is caught as well as one in the payload.
import { crc32 } from "../util/index.js";
import { TransportError } from "./errors.js";

/** The first byte of every frame: catches a peer that is not speaking this protocol at all. */
export const FRAME_MAGIC = 0xca;
/** The frame-layer version this code reads and writes. */
export const FRAME_VERSION = 1;
/** Bytes in a frame header. */
export const FRAME_HEADER_BYTES = 16;
/** The largest payload length the header can express (u32). */
const PAYLOAD_LENGTH_LIMIT = 0xffff_ffff;

/** The kinds of frame, by their wire value. */
export const FrameType = {
  /** Dialer -> listener, first frame on a connection: who I am, which cluster, what for. */
  hello: 1,
  /** Listener -> dialer: the answer to `hello` (accepted, or rejected with a reason). */
  welcome: 2,
  /** One application (Raft) message, encoded by the plugged-in codec. */
  message: 3,
  /** Snapshot sender -> receiver: starts or resumes a transfer. */
  snapshotBegin: 4,
  /** Snapshot sender -> receiver: bytes at an offset of the stream. */
  snapshotChunk: 5,
  /** Snapshot sender -> receiver: the stream is complete (total length and CRC). */
  snapshotEnd: 6,
  /** Snapshot receiver -> sender: how far the receiver has received and consumed. */
  snapshotAck: 7,
  /** Either side: give up on the transfer, with a reason. */
  snapshotAbort: 8,
} as const;

/** A frame type's wire value. */
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const frameTypeValues: ReadonlySet<number> = new Set(Object.values(FrameType));

/** Whether `n` is a frame type this version knows. */
export function isFrameType(n: number): n is FrameType {
  return frameTypeValues.has(n);
}

/** One decoded frame. `payload` may share memory with the chunk it was decoded from. */
export interface Frame {
  readonly type: FrameType;
  readonly group: number;
  readonly payload: Uint8Array;
}

/** The total bytes a frame with `payloadBytes` of payload occupies on the wire. */
export function frameBytes(payloadBytes: number): number {
  return FRAME_HEADER_BYTES + payloadBytes;
}

/**
 * Encodes a frame as a list of buffers (the header first, then the payload parts unchanged), so a
 * caller can hand them to one socket write without copying the payload. Throws ERR_FRAME_TOO_LARGE
 * when the whole frame would exceed `frameBytesMax`: the receiver would drop the connection anyway.
 */
export function encodeFrame(
  type: FrameType,
  group: number,
  payload: Uint8Array | readonly Uint8Array[],
  frameBytesMax: number,
): Uint8Array[] {
  const parts = payload instanceof Uint8Array ? [payload] : [...payload];
  let length = 0;
  for (const part of parts) length += part.length;
  if (length > PAYLOAD_LENGTH_LIMIT || frameBytes(length) > frameBytesMax) {
    throw new TransportError(
      "ERR_FRAME_TOO_LARGE",
      `frame of ${frameBytes(length)} bytes exceeds frameBytesMax ${frameBytesMax}`,
    );
  }
  if (!Number.isInteger(group) || group < 0 || group > 0xffff_ffff) {
    throw new RangeError(`group id ${group} does not fit the frame header (u32)`);
  }
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header[0] = FRAME_MAGIC;
  header[1] = FRAME_VERSION;
  header[2] = type;
  header[3] = 0;
  view.setUint32(4, group);
  view.setUint32(8, length);
  let crc = crc32(header.subarray(0, 12));
  for (const part of parts) crc = crc32(part, crc);
  view.setUint32(12, crc);
  return [header, ...parts];
}

/** Concatenates buffers into one (the cost of one copy); used where a single buffer is needed. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0] !== undefined) return parts[0];
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** What one {@link FrameDecoder.push} produced: the frames completed, and the error that stopped it. */
export interface FrameDecodeResult {
  readonly frames: Frame[];
  /** Set once the stream is known bad; every later push returns the same error and no frames. */
  readonly error: TransportError | undefined;
}

/**
 * An incremental frame parser: feed it the bytes of a stream in chunks cut anywhere (one byte at a
 * time is fine) and it returns each frame once it is complete. It checks the declared length against
 * `frameBytesMax` as soon as the header is in, before it buffers a single payload byte, so a peer
 * cannot make it allocate more than one maximal frame. After an error it stays failed: the stream is
 * out of step and the connection must be dropped.
 */
export class FrameDecoder {
  /** The limit checked at each header; may be raised between frames (after a handshake). */
  frameBytesMax: number;
  #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerView = new DataView(this.#header.buffer);
  #headerFilled = 0;
  /** The payload being collected, once a header is accepted; undefined while reading a header. */
  #payload: Uint8Array | undefined;
  #payloadFilled = 0;
  #error: TransportError | undefined;

  /** Creates a decoder that refuses any frame larger than `frameBytesMax` (header included). */
  constructor(frameBytesMax: number) {
    if (!Number.isSafeInteger(frameBytesMax) || frameBytesMax < FRAME_HEADER_BYTES) {
      throw new RangeError(`frameBytesMax must be an integer >= ${FRAME_HEADER_BYTES}, got ${frameBytesMax}`);
    }
    this.frameBytesMax = frameBytesMax;
  }

  /** The error that stopped the decoder, if any. */
  get error(): TransportError | undefined {
    return this.#error;
  }

  /** Bytes held for a frame not yet complete (header and payload): what a slow peer costs us. */
  get bufferedBytes(): number {
    return this.#headerFilled + this.#payloadFilled;
  }

  /** Feeds the next bytes of the stream; returns the frames they completed. */
  push(chunk: Uint8Array): FrameDecodeResult {
    const frames: Frame[] = [];
    if (this.#error !== undefined) return { frames, error: this.#error };
    let at = 0;
    while (at < chunk.length) {
      if (this.#payload === undefined) {
        // Fast path: a whole frame inside the chunk with nothing buffered is not copied.
        if (this.#headerFilled === 0 && chunk.length - at >= FRAME_HEADER_BYTES) {
          this.#header.set(chunk.subarray(at, at + FRAME_HEADER_BYTES));
          this.#headerFilled = FRAME_HEADER_BYTES;
          at += FRAME_HEADER_BYTES;
        } else {
          const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, chunk.length - at);
          this.#header.set(chunk.subarray(at, at + take), this.#headerFilled);
          this.#headerFilled += take;
          at += take;
          if (this.#headerFilled < FRAME_HEADER_BYTES) break;
        }
        const length = this.#checkHeader();
        if (length === undefined) return { frames, error: this.#error };
        if (this.#payloadFilled === 0 && chunk.length - at >= length) {
          const frame = this.#finish(chunk.subarray(at, at + length));
          if (frame === undefined) return { frames, error: this.#error };
          frames.push(frame);
          at += length;
          continue;
        }
        this.#payload = new Uint8Array(length);
        this.#payloadFilled = 0;
      }
      const payload = this.#payload;
      const take = Math.min(payload.length - this.#payloadFilled, chunk.length - at);
      payload.set(chunk.subarray(at, at + take), this.#payloadFilled);
      this.#payloadFilled += take;
      at += take;
      if (this.#payloadFilled === payload.length) {
        const frame = this.#finish(payload);
        if (frame === undefined) return { frames, error: this.#error };
        frames.push(frame);
      }
    }
    return { frames, error: undefined };
  }

  /** Validates a complete header; returns the payload length, or undefined after recording an error. */
  #checkHeader(): number | undefined {
    const h = this.#header;
    if (h[0] !== FRAME_MAGIC) return this.#fail("ERR_FRAME_CORRUPT", `bad frame magic 0x${hex(h[0])}`);
    if (h[1] !== FRAME_VERSION) {
      return this.#fail("ERR_PROTOCOL_VERSION", `frame version ${h[1]} is not ${FRAME_VERSION}`);
    }
    const type = h[2] ?? 0;
    if (!isFrameType(type)) return this.#fail("ERR_FRAME_CORRUPT", `unknown frame type ${type}`);
    // Flags are reserved in version 1: a set bit means the peer speaks something we do not.
    if (h[3] !== 0) return this.#fail("ERR_FRAME_CORRUPT", `reserved frame flags set: 0x${hex(h[3])}`);
    const length = this.#headerView.getUint32(8);
    if (frameBytes(length) > this.frameBytesMax) {
      return this.#fail(
        "ERR_FRAME_TOO_LARGE",
        `peer declared a frame of ${frameBytes(length)} bytes, above frameBytesMax ${this.frameBytesMax}`,
      );
    }
    return length;
  }

  /** Checks the CRC of a complete frame and resets for the next header. */
  #finish(payload: Uint8Array): Frame | undefined {
    const h = this.#header;
    const expected = this.#headerView.getUint32(12);
    const actual = crc32(payload, crc32(h.subarray(0, 12)));
    if (actual !== expected) {
      this.#fail(
        "ERR_FRAME_CORRUPT",
        `frame checksum mismatch (0x${actual.toString(16)} != 0x${expected.toString(16)})`,
      );
      return undefined;
    }
    const frame: Frame = { type: (h[2] ?? 0) as FrameType, group: this.#headerView.getUint32(4), payload };
    this.#headerFilled = 0;
    this.#payload = undefined;
    this.#payloadFilled = 0;
    return frame;
  }

  #fail(
    code: "ERR_FRAME_CORRUPT" | "ERR_FRAME_TOO_LARGE" | "ERR_PROTOCOL_VERSION",
    message: string,
  ): undefined {
    this.#error = new TransportError(code, message);
    this.#headerFilled = 0;
    this.#payload = undefined;
    this.#payloadFilled = 0;
    return undefined;
  }
}

function hex(n: number | undefined): string {
  return (n ?? 0).toString(16).padStart(2, "0");
}
