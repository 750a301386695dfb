import type { Socket } from "node:net";
import { TransportError } from "./errors.js";
import { concatBytes, type Frame, FrameDecoder } from "./frame.js";

/** What a {@link FrameConnection} tells its owner. */
export interface FrameConnectionHandlers {
  /** A complete, checksummed frame arrived. */
  onFrame(frame: Frame): void;
  /** The connection is gone; `error` says why (undefined for an orderly close we asked for). */
  onClose(error: TransportError | undefined): void;
}

/**
 * An ordered, two-way stream of frames between two nodes: what the snapshot protocol
 * (snapshot-sender.ts and snapshot-receiver.ts) talks over, so the TLS transport (a {@link FrameConnection} on a socket) and its
 * in-memory twin (memory-connection.ts) run the same sender and receiver.
 */
export interface FrameLink {
  /** Whether the link was closed (by either side). */
  readonly closed: boolean;
  /** Replaces the handlers, for a link changing hands (after a handshake, to a snapshot receiver). */
  setHandlers(handlers: FrameConnectionHandlers): void;
  /** Writes the given frames (each a list of parts), in order; false when the link is closed or full. */
  write(frames: readonly Uint8Array[][]): boolean;
  /** Closes the link, reporting `error` (undefined: a close we chose) to the owner once. */
  close(error?: TransportError): void;
  /** Sends `frames`, then closes: used to deliver a refusal before hanging up. */
  endAfterWrite(frames: readonly Uint8Array[][], error: TransportError): void;
}

/**
 * A socket seen as a stream of frames: decodes what arrives through a {@link FrameDecoder} (so the
 * size limit holds before buffering) and writes lists of frame parts with a single `write`. Closes
 * the socket at the first decode error and reports it once through `onClose`.
 */
export class FrameConnection implements FrameLink {
  readonly socket: Socket;
  readonly decoder: FrameDecoder;
  #handlers: FrameConnectionHandlers;
  #closed = false;

  /** Wraps `socket`; frames larger than `frameBytesMax` drop the connection. */
  constructor(socket: Socket, frameBytesMax: number, handlers: FrameConnectionHandlers) {
    this.socket = socket;
    this.decoder = new FrameDecoder(frameBytesMax);
    this.#handlers = handlers;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (cause: Error) =>
      this.close(new TransportError("ERR_CONNECTION_LOST", `connection error: ${cause.message}`, { cause })),
    );
    socket.on("close", () =>
      this.close(new TransportError("ERR_CONNECTION_LOST", "connection closed by peer")),
    );
  }

  /** Whether the connection was closed (by either side). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the socket's buffer is over its high-water mark: wait for `drain` before writing more. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Replaces the handlers, for a connection changing hands after its handshake. */
  setHandlers(handlers: FrameConnectionHandlers): void {
    this.#handlers = handlers;
  }

  /** Writes the given frames (each a list of parts) in one socket write; false means "wait for drain". */
  write(frames: readonly Uint8Array[][]): boolean {
    if (this.#closed) return false;
    const parts: Uint8Array[] = [];
    for (const frame of frames) for (const part of frame) parts.push(part);
    return this.socket.write(concatBytes(parts));
  }

  /** Closes the connection, reporting `error` (undefined: a close we chose) to the owner once. */
  close(error?: TransportError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
    this.#handlers.onClose(error);
  }

  /** Sends what is buffered, then closes: used to deliver a refusal before hanging up. */
  endAfterWrite(frames: readonly Uint8Array[][], error: TransportError): void {
    if (this.#closed) return;
    this.write(frames);
    this.#closed = true;
    this.socket.end();
    // A peer that never reads must not hold the socket open forever.
    this.socket.setTimeout(2_000, () => this.socket.destroy());
    this.#handlers.onClose(error);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    const { frames, error } = this.decoder.push(chunk);
    for (const frame of frames) {
      if (this.#closed) return;
      this.#handlers.onFrame(frame);
    }
    if (error !== undefined) this.close(error);
  }
}
