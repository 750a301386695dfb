// How a stored snapshot travels to a follower: each of its chunks as a 4-byte little-endian length
// and the chunk's bytes. A snapshot file's chunks are units of the state format (a chunk holds whole
// key/value pairs), but the transport promises only the bytes in order: it splits a piece larger
// than its chunk limit (a value above 256 KiB, or a lowered frame size) and a follower storing the
// pieces as chunks would hold a snapshot it can never install. The length prefixes let the follower
// rebuild the sender's chunks whatever pieces the bytes arrive in.
import { StorageError } from "../storage/index.js";

/** Largest chunk a snapshot stream may declare: far above any state chunk, below a runaway. */
export const streamChunkBytesMax = 64 * 1024 * 1024;

const headerBytes = 4;

/** The stream of `chunks` as it goes to a follower: each chunk prefixed with its length. */
export async function* encodeSnapshotStream(
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const chunk of chunks) {
    const framed = new Uint8Array(headerBytes + chunk.length);
    new DataView(framed.buffer).setUint32(0, chunk.length, true);
    framed.set(chunk, headerBytes);
    yield framed;
  }
}

/**
 * The sender's chunks again, from a stream of {@link encodeSnapshotStream} that arrives in pieces
 * of any size. Throws StorageError ERR_SNAPSHOT_CORRUPT when the stream ends inside a chunk or
 * declares one above `chunkBytesMax`.
 */
export async function* decodeSnapshotStream(
  pieces: AsyncIterable<Uint8Array>,
  chunkBytesMax: number = streamChunkBytesMax,
): AsyncGenerator<Uint8Array, void, undefined> {
  const header = new Uint8Array(headerBytes);
  let headerFilled = 0;
  let chunk: Uint8Array | undefined;
  let chunkFilled = 0;
  for await (const piece of pieces) {
    let at = 0;
    while (at < piece.length) {
      if (chunk === undefined) {
        const take = Math.min(headerBytes - headerFilled, piece.length - at);
        header.set(piece.subarray(at, at + take), headerFilled);
        headerFilled += take;
        at += take;
        if (headerFilled < headerBytes) break;
        const length = new DataView(header.buffer).getUint32(0, true);
        if (length > chunkBytesMax) {
          throw new StorageError(
            "ERR_SNAPSHOT_CORRUPT",
            `snapshot stream declares a chunk of ${length} bytes`,
          );
        }
        chunk = new Uint8Array(length);
        chunkFilled = 0;
      }
      const take = Math.min(chunk.length - chunkFilled, piece.length - at);
      chunk.set(piece.subarray(at, at + take), chunkFilled);
      chunkFilled += take;
      at += take;
      if (chunkFilled === chunk.length) {
        const whole = chunk;
        chunk = undefined;
        headerFilled = 0;
        yield whole;
      }
    }
  }
  if (chunk !== undefined || headerFilled > 0) {
    throw new StorageError("ERR_SNAPSHOT_CORRUPT", "snapshot stream ends inside a chunk");
  }
}
