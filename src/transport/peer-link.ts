import type { NodeId } from "../raft/index.js";
import { BoundedQueue } from "../util/index.js";
import { type BackoffSettings, backoffDelayMs } from "./backoff.js";
import type { TimerHandle, TransportEnv } from "./env.js";
import { TransportError } from "./errors.js";
import type { FrameConnection, FrameConnectionHandlers } from "./frame-connection.js";
import type { PeerAddress, TransportEvent } from "./transport.js";

/** One encoded frame waiting in a peer's queue. */
interface QueuedFrame {
  readonly parts: Uint8Array[];
  readonly bytes: number;
}

/** Limits a {@link PeerLink} works within. */
export interface PeerLinkSettings extends BackoffSettings {
  readonly peerQueueMessagesMax: number;
  readonly writeBatchBytesMax: number;
}

/** What a {@link PeerLink} needs from its transport. */
export interface PeerLinkDeps {
  readonly env: TransportEnv;
  readonly settings: PeerLinkSettings;
  /** Opens an authenticated connection for messages; installs `handlers` before resolving. */
  dial(peer: NodeId, address: PeerAddress, handlers: FrameConnectionHandlers): Promise<FrameConnection>;
  emit(event: TransportEvent): void;
  reportUnreachable(peer: NodeId): void;
}

/**
 * The outbound side of one peer: a bounded queue of encoded frames and the one connection that
 * carries them, redialled with jittered exponential backoff whenever it breaks. Frames queued in
 * one turn of the event loop leave in one socket write, unless {@link flushNow} writes them
 * earlier.
 */
export class PeerLink {
  readonly peer: NodeId;
  readonly address: PeerAddress;
  readonly #deps: PeerLinkDeps;
  readonly #queue: BoundedQueue<QueuedFrame>;
  #conn: FrameConnection | undefined;
  #connecting = false;
  #closed = false;
  #attempt = 0;
  #retryTimer: TimerHandle | undefined;
  #flushScheduled = false;
  #waitingForDrain = false;

  /** Creates the link; it dials once {@link connect} is called. */
  constructor(peer: NodeId, address: PeerAddress, deps: PeerLinkDeps) {
    this.peer = peer;
    this.address = address;
    this.#deps = deps;
    this.#queue = new BoundedQueue(deps.settings.peerQueueMessagesMax);
  }

  /** Whether a handshaken connection is open. */
  get connected(): boolean {
    return this.#conn !== undefined;
  }

  /** Frames waiting to be written. */
  get queuedMessages(): number {
    return this.#queue.length;
  }

  /** Queues one encoded frame; false (and nothing queued) when the queue is full. */
  enqueue(parts: Uint8Array[]): boolean {
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    if (!this.#queue.push({ parts, bytes })) return false;
    this.#scheduleFlush();
    return true;
  }

  /**
   * Writes every queued frame now, in one socket write, instead of at the end of this turn of the
   * event loop: for messages on a client write's critical path.
   */
  flushNow(): void {
    this.#flush();
  }

  /** Starts dialling if no connection is open or being opened. */
  connect(): void {
    if (this.#closed || this.#conn !== undefined || this.#connecting || this.#retryTimer !== undefined)
      return;
    this.#connecting = true;
    const handlers: FrameConnectionHandlers = {
      // Nothing flows back on a message connection after the welcome: anything else is a peer bug.
      onFrame: (frame) =>
        this.#conn?.close(
          new TransportError("ERR_FRAME_CORRUPT", `unexpected frame type ${frame.type} from peer`),
        ),
      onClose: (error) => this.#lost(error),
    };
    this.#deps.dial(this.peer, this.address, handlers).then(
      (conn) => {
        this.#connecting = false;
        if (this.#closed) {
          conn.close();
          return;
        }
        if (conn.closed) {
          // It broke between the welcome and this callback; its onClose found no open link to report.
          this.#deps.reportUnreachable(this.peer);
          this.#scheduleRetry();
          return;
        }
        this.#conn = conn;
        this.#attempt = 0;
        this.#waitingForDrain = false;
        this.#deps.emit({ kind: "connected", peer: this.peer });
        this.#scheduleFlush();
      },
      (error: unknown) => {
        this.#connecting = false;
        if (this.#closed) return;
        const failure =
          error instanceof TransportError
            ? error
            : new TransportError("ERR_CONNECTION_LOST", `dial failed: ${String(error)}`, { cause: error });
        this.#deps.emit({ kind: "dial-failed", peer: this.peer, error: failure });
        this.#deps.reportUnreachable(this.peer);
        this.#scheduleRetry();
      },
    );
  }

  /**
   * Dials at once if the link is waiting out a backoff: the peer just dialled us, so it is up again
   * (a restarted node), and waiting up to `reconnectBackoffMaxMs` would leave it without its leader.
   */
  redialNow(): void {
    if (this.#closed || this.#retryTimer === undefined) return;
    this.#retryTimer.cancel();
    this.#retryTimer = undefined;
    this.#attempt = 0;
    this.connect();
  }

  /** Closes the connection, drops the queue and cancels any retry; the link is done. */

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    this.#queue.clear();
    this.#conn?.close();
    this.#conn = undefined;
  }

  /** Breaks the current connection as if the network had (tests and operators use it). */
  dropConnection(): void {
    this.#conn?.close(new TransportError("ERR_CONNECTION_LOST", "connection dropped locally"));
  }

  #lost(error: TransportError | undefined): void {
    const wasOpen = this.#conn !== undefined;
    this.#conn = undefined;
    if (this.#closed || !wasOpen) return;
    const reason = error ?? new TransportError("ERR_CONNECTION_LOST", "connection closed");
    this.#deps.emit({ kind: "disconnected", peer: this.peer, error: reason });
    // Frames already written may be lost with the socket; Raft must hear about it to probe again.
    this.#deps.reportUnreachable(this.peer);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    const delayMs = backoffDelayMs(this.#attempt, this.#deps.settings, (bound) =>
      this.#deps.env.below(bound),
    );
    this.#attempt++;
    this.#retryTimer = this.#deps.env.setTimer(delayMs, () => {
      this.#retryTimer = undefined;
      this.connect();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#conn === undefined || this.#waitingForDrain) return;
    this.#flushScheduled = true;
    // One flush per turn of the event loop: every send made in this turn joins the same write.
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const conn = this.#conn;
    if (conn === undefined || this.#waitingForDrain) return;
    const batchBytesMax = this.#deps.settings.writeBatchBytesMax;
    while (this.#queue.length > 0) {
      const batch: Uint8Array[][] = [];
      let bytes = 0;
      for (;;) {
        const next = this.#queue.peek();
        if (next === undefined || (batch.length > 0 && bytes + next.bytes > batchBytesMax)) break;
        this.#queue.shift();
        batch.push(next.parts);
        bytes += next.bytes;
      }
      if (!conn.write(batch)) {
        // The socket buffer is full: leave the rest queued (bounded) until the kernel catches up.
        this.#waitingForDrain = true;
        conn.socket.once("drain", () => {
          if (this.#conn !== conn) return;
          this.#waitingForDrain = false;
          this.#scheduleFlush();
        });
        return;
      }
    }
  }
}
