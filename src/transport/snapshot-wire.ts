// Payloads of the snapshot frames (see frame.ts for the frame types).
import { ByteReader, ByteWriter } from "./wire.js";

/** Starts or resumes transfer `transferId`. */
export interface SnapshotBegin {
  readonly transferId: number;
  readonly meta: Uint8Array;
}

/** The receiver's position: bytes it consumed (handed on) and bytes it holds; `done` ends the transfer. */
export interface SnapshotAck {
  readonly consumedBytes: number;
  readonly receivedBytes: number;
  readonly done: boolean;
}

/** The stream is complete: its length and CRC-32. */
export interface SnapshotEnd {
  readonly totalBytes: number;
  readonly crc: number;
}

const REASON_BYTES_MAX = 512;

/** Encodes a begin payload. */
export function encodeSnapshotBegin(begin: SnapshotBegin): Uint8Array {
  return new ByteWriter().u53(begin.transferId).bytes(begin.meta).finish();
}

/** Decodes a begin payload, refusing metadata above `metaBytesMax`. */
export function decodeSnapshotBegin(payload: Uint8Array, metaBytesMax: number): SnapshotBegin {
  const reader = new ByteReader(payload);
  const transferId = reader.u53("transfer id");
  const meta = reader.bytes("snapshot meta", metaBytesMax);
  reader.end("snapshot begin");
  return { transferId, meta };
}

/** Encodes the header of a chunk payload; the data follows it unchanged. */
export function encodeSnapshotChunkHeader(offset: number): Uint8Array {
  return new ByteWriter().u53(offset).finish();
}

/** Decodes a chunk payload; `data` aliases the payload. */
export function decodeSnapshotChunk(payload: Uint8Array): { offset: number; data: Uint8Array } {
  const reader = new ByteReader(payload);
  const offset = reader.u53("chunk offset");
  return { offset, data: reader.rest() };
}

/** Encodes an end payload. */
export function encodeSnapshotEnd(end: SnapshotEnd): Uint8Array {
  return new ByteWriter().u53(end.totalBytes).u32(end.crc).finish();
}

/** Decodes an end payload. */
export function decodeSnapshotEnd(payload: Uint8Array): SnapshotEnd {
  const reader = new ByteReader(payload);
  const totalBytes = reader.u53("total bytes");
  const crc = reader.u32("crc");
  reader.end("snapshot end");
  return { totalBytes, crc };
}

/** Encodes an ack payload. */
export function encodeSnapshotAck(ack: SnapshotAck): Uint8Array {
  return new ByteWriter()
    .u53(ack.consumedBytes)
    .u53(ack.receivedBytes)
    .u8(ack.done ? 1 : 0)
    .finish();
}

/** Decodes an ack payload. */
export function decodeSnapshotAck(payload: Uint8Array): SnapshotAck {
  const reader = new ByteReader(payload);
  const consumedBytes = reader.u53("consumed bytes");
  const receivedBytes = reader.u53("received bytes");
  const done = reader.u8("done") === 1;
  reader.end("snapshot ack");
  return { consumedBytes, receivedBytes, done };
}

/** Encodes an abort payload. */
export function encodeSnapshotAbort(reason: string): Uint8Array {
  return new ByteWriter().string(reason.slice(0, 120), REASON_BYTES_MAX).finish();
}

/** Decodes an abort payload. */
export function decodeSnapshotAbort(payload: Uint8Array): string {
  const reader = new ByteReader(payload);
  const reason = reader.string("abort reason", REASON_BYTES_MAX);
  reader.end("snapshot abort");
  return reason;
}
