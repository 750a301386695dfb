// Snapshot streaming over a dedicated connection per transfer (see docs/design.md, "Transport").
// The protocol talks over any FrameLink: the TLS transport's sockets and the in-memory twin's
// simulated connections run this same sender and receiver.
//
//   sender                                  receiver
//     | hello(purpose=snapshot) ----------->  |   (TLS + identity checks as for messages)
//     | <----------------------- welcome      |
//     | begin(transferId, meta) ----------->  |   new transfer: handler gets the stream
//     | <---------- ack(consumed, received)   |   resume: says where to continue
//     | chunk(offset, data) x window ------>  |
//     | <---------- ack(consumed, received)   |   one per chunk the consumer takes
//     | end(totalBytes, crc) -------------->  |
//     | <---------- ack(..., done)            |   consumer reached the verified end
//
// Flow control: the sender keeps at most `snapshotWindowChunksMax` chunks beyond what the receiver's
// consumer has taken, so memory on both sides is bounded and a slow disk slows the sender down.
// Resume: unconsumed chunks stay in the sender's window, so after a broken connection the sender
// redials, says `begin` with the same transfer id, and the receiver's ack tells it where to go on.
//
// This file is the sending end; snapshot-receiver.ts the receiving end.
import type { GroupId, NodeId } from "../raft/index.js";
import { assert, crc32 } from "../util/index.js";
import { backoffDelayMs } from "./backoff.js";
import type { TransportEnv } from "./env.js";
import { asTransportError, TransportError } from "./errors.js";
import { encodeFrame, FrameType } from "./frame.js";
import type { FrameConnectionHandlers, FrameLink } from "./frame-connection.js";
import type { TransportSettings } from "./settings.js";
import {
  decodeSnapshotAbort,
  decodeSnapshotAck,
  encodeSnapshotAbort,
  encodeSnapshotBegin,
  encodeSnapshotChunkHeader,
  encodeSnapshotEnd,
  type SnapshotAck,
} from "./snapshot-wire.js";

/** Events a sender session waits for, in arrival order. */
type SenderEvent =
  | { readonly kind: "ack"; readonly ack: SnapshotAck }
  | { readonly kind: "abort"; readonly reason: string }
  | { readonly kind: "closed"; readonly error: TransportError };

/** A FIFO of events with one waiting reader; bounded, since acks are bounded by the window. */
class Mailbox<T> {
  readonly #items: T[] = [];
  readonly #itemsMax: number;
  #waiter: ((item: T) => void) | undefined;

  constructor(itemsMax: number) {
    this.#itemsMax = itemsMax;
  }

  /** Delivers `item`; false when the mailbox is full (the peer is misbehaving). */
  push(item: T): boolean {
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter(item);
      return true;
    }
    if (this.#items.length >= this.#itemsMax) return false;
    this.#items.push(item);
    return true;
  }

  next(): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    assert(this.#waiter === undefined, "one reader per mailbox");
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }
}

/** What a snapshot sender needs from its transport. */
export interface SnapshotSenderDeps {
  readonly env: TransportEnv;
  readonly settings: TransportSettings;
  /** Opens an authenticated snapshot connection, installing `handlers` before resolving. */
  dialSnapshot(to: NodeId, handlers: FrameConnectionHandlers): Promise<FrameLink>;
  /** Waits `delayMs`, or less if the transport closes; resolves false when it closed. */
  sleep(delayMs: number): Promise<boolean>;
  /** Whether the transport was closed. */
  isClosed(): boolean;
}

interface Piece {
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * Streams one snapshot to `to`, redialling and resuming after broken connections up to
 * `snapshotResumeAttemptsMax` times. Resolves when the receiver's consumer reached the verified end.
 */
export async function sendSnapshotStream(
  deps: SnapshotSenderDeps,
  to: NodeId,
  group: GroupId,
  meta: Uint8Array,
  chunks: AsyncIterable<Uint8Array>,
): Promise<void> {
  const s = deps.settings;
  if (meta.length > s.snapshotMetaBytesMax) {
    throw new TransportError(
      "ERR_FRAME_TOO_LARGE",
      `snapshot meta of ${meta.length} bytes exceeds ${s.snapshotMetaBytesMax}`,
    );
  }
  const transferId = deps.env.below(2 ** 24) * 2 ** 24 + deps.env.below(2 ** 24);
  const source = chunks[Symbol.asyncIterator]();
  const windowBytes = s.snapshotWindowChunksMax * s.snapshotChunkBytesMax;
  // Invariant: `window` holds, in order and contiguous, every piece from the receiver's consumed
  // offset up to `pulledBytes`; a resume can restart anywhere inside it.
  const window: Piece[] = [];
  let pulledBytes = 0;
  let crc = 0;
  let sourceDone = false;
  let leftover: Uint8Array | undefined;
  let attempts = 0;

  /** The next piece of at most snapshotChunkBytesMax from the source, or undefined at its end. */
  const pull = async (): Promise<Uint8Array | undefined> => {
    for (;;) {
      if (leftover !== undefined && leftover.length > 0) {
        const piece = leftover.subarray(0, s.snapshotChunkBytesMax);
        leftover = leftover.subarray(piece.length);
        return piece;
      }
      let next: IteratorResult<Uint8Array>;
      try {
        next = await source.next();
      } catch (cause) {
        throw new SourceFailure(cause);
      }
      if (next.done === true) return undefined;
      leftover = next.value;
    }
  };

  const giveUp = async (error: TransportError): Promise<never> => {
    await source.return?.();
    throw error;
  };

  for (;;) {
    if (deps.isClosed()) return giveUp(new TransportError("ERR_TRANSPORT_CLOSED", "transport closed"));
    const mailbox = new Mailbox<SenderEvent>(4 * s.snapshotWindowChunksMax + 16);
    let outcome: "done" | TransportError;
    let current: FrameLink | undefined;
    try {
      const conn = await deps.dialSnapshot(to, {
        onFrame: (frame) => {
          let event: SenderEvent;
          try {
            if (frame.type === FrameType.snapshotAck)
              event = { kind: "ack", ack: decodeSnapshotAck(frame.payload) };
            else if (frame.type === FrameType.snapshotAbort)
              event = { kind: "abort", reason: decodeSnapshotAbort(frame.payload) };
            else
              throw new TransportError(
                "ERR_FRAME_CORRUPT",
                `unexpected frame type ${frame.type} on a snapshot connection`,
              );
          } catch (error) {
            current?.close(transferError(error));
            return;
          }
          if (!mailbox.push(event)) {
            current?.close(new TransportError("ERR_FRAME_CORRUPT", "snapshot receiver floods acks"));
          }
        },
        onClose: (error) => {
          mailbox.push({
            kind: "closed",
            error: error ?? new TransportError("ERR_CONNECTION_LOST", "closed"),
          });
        },
      });
      current = conn;
      outcome = await session(conn, mailbox);
      conn.close();
    } catch (error) {
      if (error instanceof SourceFailure) {
        // The source broke: no resume can help. Tell the receiver, then report the cause.
        current?.endAfterWrite(
          [
            encodeFrame(
              FrameType.snapshotAbort,
              group,
              encodeSnapshotAbort("snapshot source failed"),
              s.frameBytesMax,
            ),
          ],
          new TransportError("ERR_SNAPSHOT_ABORTED", "snapshot source failed"),
        );
        throw new TransportError(
          "ERR_SNAPSHOT_ABORTED",
          `reading the snapshot to send failed: ${String(error.cause)}`,
          {
            cause: error.cause,
          },
        );
      }
      outcome = transferError(error);
    }
    if (outcome === "done") return;
    if (outcome.code === "ERR_SNAPSHOT_ABORTED" || outcome.code === "ERR_TRANSPORT_CLOSED")
      return giveUp(outcome);
    attempts++;
    if (attempts > s.snapshotResumeAttemptsMax) {
      return giveUp(
        new TransportError(
          "ERR_SNAPSHOT_ABORTED",
          `snapshot to node ${to} failed after ${attempts} attempts`,
          {
            cause: outcome,
          },
        ),
      );
    }
    const delayMs = backoffDelayMs(attempts - 1, s, (bound) => deps.env.below(bound));
    if (!(await deps.sleep(delayMs)))
      return giveUp(new TransportError("ERR_TRANSPORT_CLOSED", "transport closed"));
  }

  /** One connection's worth of the transfer. */
  async function session(conn: FrameLink, mailbox: Mailbox<SenderEvent>): Promise<"done" | TransportError> {
    const write = (type: FrameType, payload: Uint8Array | Uint8Array[]): void => {
      conn.write([encodeFrame(type, group, payload, s.frameBytesMax)]);
    };
    write(FrameType.snapshotBegin, encodeSnapshotBegin({ transferId, meta }));
    let consumedBytes = window[0]?.offset ?? pulledBytes;
    let sentBytes = -1;
    let endSent = false;
    for (;;) {
      const event = await nextWithin(mailbox, deps.env, s.snapshotStallTimeoutMs);
      switch (event.kind) {
        case "closed":
          return event.error;
        case "abort":
          return new TransportError("ERR_SNAPSHOT_ABORTED", `receiver aborted the snapshot: ${event.reason}`);
        case "ack":
          break;
      }
      const { ack } = event;
      if (sentBytes < 0) {
        // The first ack of a session says where the receiver stands; it must lie inside our window.
        const startBytes = window[0]?.offset ?? pulledBytes;
        const onBoundary =
          ack.receivedBytes === pulledBytes || window.some((p) => p.offset === ack.receivedBytes);
        if (ack.receivedBytes < startBytes || ack.receivedBytes > pulledBytes || !onBoundary) {
          write(FrameType.snapshotAbort, encodeSnapshotAbort("cannot resume at that offset"));
          return new TransportError(
            "ERR_SNAPSHOT_ABORTED",
            `receiver holds ${ack.receivedBytes} bytes, outside what can be resent (${startBytes}..${pulledBytes})`,
          );
        }
        sentBytes = ack.receivedBytes;
      }
      if (ack.consumedBytes > consumedBytes) consumedBytes = Math.min(ack.consumedBytes, sentBytes);
      while (window.length > 0 && (window[0]?.offset ?? 0) + (window[0]?.data.length ?? 0) <= consumedBytes)
        window.shift();
      if (ack.done) {
        if (!endSent || ack.consumedBytes !== pulledBytes) {
          return new TransportError("ERR_SNAPSHOT_CORRUPT", "receiver finished before the stream ended");
        }
        return "done";
      }
      // Fill the window: resend what the receiver lacks, then pull new pieces from the source.
      // Invariant: sentBytes - consumedBytes <= windowBytes, which is what the receiver enforces.
      while (!conn.closed && sentBytes - consumedBytes + s.snapshotChunkBytesMax <= windowBytes) {
        let piece = window.find((p) => p.offset === sentBytes);
        if (piece === undefined) {
          if (sourceDone) break;
          const data = await pull();
          if (data === undefined) {
            sourceDone = true;
            break;
          }
          piece = { offset: pulledBytes, data };
          pulledBytes += data.length;
          crc = crc32(data, crc);
          window.push(piece);
        }
        write(FrameType.snapshotChunk, [encodeSnapshotChunkHeader(piece.offset), piece.data]);
        sentBytes = piece.offset + piece.data.length;
      }
      if (sourceDone && sentBytes === pulledBytes && !endSent) {
        write(FrameType.snapshotEnd, encodeSnapshotEnd({ totalBytes: pulledBytes, crc }));
        endSent = true;
      }
    }
  }
}

/** A failure of the snapshot's own source (not of the network): never retried. */
class SourceFailure extends Error {
  constructor(cause: unknown) {
    super("snapshot source failed", { cause });
  }
}

/** A failure of a transfer's connection as the transport's error. */
export function transferError(error: unknown): TransportError {
  return asTransportError(error, "ERR_CONNECTION_LOST", "snapshot transfer failed");
}

/**
 * The next sender event, or a "closed" event when the receiver said nothing for `stallMs`: a
 * receiver whose consumer neither reads nor aborts must not hold the sender forever. After a
 * stall the session is abandoned, so the reader left waiting on the mailbox does not matter.
 */
function nextWithin(mailbox: Mailbox<SenderEvent>, env: TransportEnv, stallMs: number): Promise<SenderEvent> {
  return new Promise((resolve) => {
    const timer = env.setTimer(stallMs, () =>
      resolve({
        kind: "closed",
        error: new TransportError("ERR_CONNECTION_LOST", `snapshot receiver silent for ${stallMs} ms`),
      }),
    );
    void mailbox.next().then((event) => {
      timer.cancel();
      resolve(event);
    });
  });
}
