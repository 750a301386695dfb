// One simulated connection of the in-memory transport: two ends, each writing encoded frames that
// the network carries to the other end in order and after the link's delay. Like TCP it hides loss
// and duplication, but a cut link, a partition or a closed node breaks it, and both ends learn so
// (the far end only once the news could have travelled). The snapshot protocol (snapshot-sender.ts, snapshot-receiver.ts) runs
// over it exactly as over a socket.
import { TransportError } from "./errors.js";
import { concatBytes, FrameDecoder } from "./frame.js";
import type { FrameConnectionHandlers, FrameLink } from "./frame-connection.js";

/**
 * Carries one direction of a connection: runs `deliver` after the link's delay, in order with the
 * earlier sends of that direction, or `lost` instead when the link is down by then.
 */
export type ConnectionWire = (deliver: () => void, lost: () => void) => void;

const lostError = (why: string): TransportError => new TransportError("ERR_CONNECTION_LOST", why);

/** One end of an in-memory connection; create both with {@link MemoryConnection.pair}. */
export class MemoryConnection implements FrameLink {
  #handlers: FrameConnectionHandlers;
  #closed = false;
  #peer: MemoryConnection | undefined;
  readonly #decoder: FrameDecoder;
  /** Carries this end's writes to the peer. */
  readonly #wire: ConnectionWire;

  private constructor(handlers: FrameConnectionHandlers, wire: ConnectionWire, frameBytesMax: number) {
    this.#handlers = handlers;
    this.#wire = wire;
    this.#decoder = new FrameDecoder(frameBytesMax);
  }

  /**
   * A connected pair: the dialler's end (with `handlers`) and the acceptor's (which gets its handlers
   * through `setHandlers`). `toAcceptor` and `toDialler` carry each direction.
   */
  static pair(
    handlers: FrameConnectionHandlers,
    toAcceptor: ConnectionWire,
    toDialler: ConnectionWire,
    frameBytesMax: number,
  ): { readonly dialler: MemoryConnection; readonly acceptor: MemoryConnection } {
    const none: FrameConnectionHandlers = { onFrame: () => {}, onClose: () => {} };
    const dialler = new MemoryConnection(handlers, toAcceptor, frameBytesMax);
    const acceptor = new MemoryConnection(none, toDialler, frameBytesMax);
    dialler.#peer = acceptor;
    acceptor.#peer = dialler;
    return { dialler, acceptor };
  }

  get closed(): boolean {
    return this.#closed;
  }

  setHandlers(handlers: FrameConnectionHandlers): void {
    this.#handlers = handlers;
  }

  write(frames: readonly Uint8Array[][]): boolean {
    if (this.#closed) return false;
    const bytes = concatBytes(frames.flat());
    // The peer decodes what arrives, checksums included, as it would from a socket.
    this.#send(() => this.#toPeer((peer) => peer.#receive(bytes)));
    return true;
  }

  close(error?: TransportError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#send(() => this.#toPeer((peer) => peer.#lost(lostError("connection closed by peer"))));
    this.#handlers.onClose(error);
  }

  endAfterWrite(frames: readonly Uint8Array[][], error: TransportError): void {
    if (this.#closed) return;
    this.write(frames);
    this.close(error);
  }

  #send(deliver: () => void): void {
    this.#wire(deliver, () => this.#break());
  }

  /** The link under the connection failed: both ends lose it. */
  #break(): void {
    const error = lostError("link to the peer is down");
    this.#lost(error);
    this.#toPeer((peer) => peer.#lost(error));
  }

  #toPeer(act: (peer: MemoryConnection) => void): void {
    const peer = this.#peer;
    if (peer !== undefined) act(peer);
  }

  #lost(error: TransportError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.onClose(error);
  }

  #receive(bytes: Uint8Array): void {
    if (this.#closed) return;
    const { frames, error } = this.#decoder.push(bytes);
    for (const frame of frames) {
      if (this.#closed) return;
      this.#handlers.onFrame(frame);
    }
    if (error !== undefined) this.close(error);
  }
}
