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
import type { GroupId, NodeId } from "../raft/index.js";
import { assert, crc32 } from "../util/index.js";
import { backoffDelayMs } from "./backoff.js";
import type { TimerHandle, TransportEnv } from "./env.js";
import { TransportError } from "./errors.js";
import { encodeFrame, type Frame, FrameType } from "./frame.js";
import type { FrameConnectionHandlers, FrameLink } from "./frame-connection.js";
import type { TransportSettings } from "./settings.js";
import {
  decodeSnapshotAbort,
  decodeSnapshotAck,
  decodeSnapshotBegin,
  decodeSnapshotChunk,
  decodeSnapshotEnd,
  encodeSnapshotAbort,
  encodeSnapshotAck,
  encodeSnapshotBegin,
  encodeSnapshotChunkHeader,
  encodeSnapshotEnd,
  type SnapshotAck,
} from "./snapshot-wire.js";
import type { IncomingSnapshot } from "./transport.js";

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
            current?.close(asTransportError(error));
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
      outcome = asTransportError(error);
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

function asTransportError(error: unknown): TransportError {
  return error instanceof TransportError
    ? error
    : new TransportError("ERR_CONNECTION_LOST", `snapshot transfer failed: ${String(error)}`, {
        cause: error,
      });
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

/** What a snapshot receiver needs from its transport. */
export interface SnapshotReceiverDeps {
  readonly env: TransportEnv;
  readonly settings: TransportSettings;
  /** The application's handler, if one was set. */
  handler(): ((snapshot: IncomingSnapshot) => void) | undefined;
}

/** The receiving end of one transfer; it outlives connections so the sender can resume. */
interface IncomingTransfer {
  readonly key: string;
  /** Chunks received but not yet taken by the consumer. */
  readonly buffer: Uint8Array[];
  bufferedBytes: number;
  receivedBytes: number;
  consumedBytes: number;
  crc: number;
  ended: boolean;
  finished: boolean;
  failed: TransportError | undefined;
  conn: FrameLink | undefined;
  timer: TimerHandle | undefined;
  wake: (() => void) | undefined;
}

/**
 * Accepts snapshot connections, hands each new transfer to the application as a stream, and keeps
 * a broken transfer for `snapshotResumeTimeoutMs` so its sender can resume it.
 */
export class SnapshotReceiver {
  readonly #deps: SnapshotReceiverDeps;
  readonly #transfers = new Map<string, IncomingTransfer>();

  /** Creates a receiver with no transfers. */
  constructor(deps: SnapshotReceiverDeps) {
    this.#deps = deps;
  }

  /** Transfers in progress or recently finished (kept to answer a late resume). */
  get transferCount(): number {
    return this.#transfers.size;
  }

  /** Takes over an authenticated snapshot connection from `from`. */
  accept(from: NodeId, conn: FrameLink): void {
    let attached: IncomingTransfer | undefined;
    conn.setHandlers({
      onFrame: (frame) => {
        try {
          if (attached === undefined) attached = this.#begin(from, conn, frame);
          else this.#onFrame(attached, frame);
        } catch (error) {
          const failure = asTransportError(error);
          if (attached !== undefined) this.#fail(attached, failure, true);
          conn.close(failure);
        }
      },
      onClose: () => {
        if (attached === undefined || attached.conn !== conn) return;
        attached.conn = undefined;
        if (attached.finished || attached.failed !== undefined) return;
        const transfer = attached;
        transfer.timer = this.#deps.env.setTimer(this.#deps.settings.snapshotResumeTimeoutMs, () =>
          this.#fail(
            transfer,
            new TransportError("ERR_SNAPSHOT_ABORTED", "snapshot sender did not resume in time"),
            false,
          ),
        );
      },
    });
  }

  /** Fails every transfer (the transport is closing). */
  close(): void {
    for (const transfer of [...this.#transfers.values()]) {
      this.#fail(transfer, new TransportError("ERR_TRANSPORT_CLOSED", "transport closed"), true);
      transfer.timer?.cancel();
    }
    this.#transfers.clear();
  }

  #begin(from: NodeId, conn: FrameLink, frame: Frame): IncomingTransfer | undefined {
    const s = this.#deps.settings;
    if (frame.type !== FrameType.snapshotBegin) {
      throw new TransportError(
        "ERR_FRAME_CORRUPT",
        `snapshot connection must start with begin, got type ${frame.type}`,
      );
    }
    const begin = decodeSnapshotBegin(frame.payload, s.snapshotMetaBytesMax);
    const key = `${from}/${begin.transferId}`;
    const existing = this.#transfers.get(key);
    if (existing !== undefined && existing.failed === undefined) {
      // A resume: the older connection (if the sender still had one) is superseded.
      existing.timer?.cancel();
      existing.timer = existing.finished ? this.#forgetLater(existing) : undefined;
      if (existing.conn !== conn) existing.conn?.close();
      existing.conn = conn;
      this.#ack(existing, existing.finished);
      return existing;
    }
    const refuse = (reason: string): undefined => {
      conn.endAfterWrite(
        [encodeFrame(FrameType.snapshotAbort, frame.group, encodeSnapshotAbort(reason), s.frameBytesMax)],
        new TransportError("ERR_SNAPSHOT_ABORTED", reason),
      );
      return undefined;
    };
    const handler = this.#deps.handler();
    if (handler === undefined) return refuse("no snapshot handler on this node");
    // Finished transfers stay known for a while only to answer a late resume; they hold no buffer
    // and must not refuse new transfers (a follower getting a fifth snapshot within the resume
    // timeout would be refused for up to that long).
    let inProgress = 0;
    for (const t of this.#transfers.values()) if (!t.finished) inProgress++;
    if (inProgress >= s.snapshotTransfersMax) return refuse("too many snapshot transfers in progress");
    const transfer: IncomingTransfer = {
      key,
      buffer: [],
      bufferedBytes: 0,
      receivedBytes: 0,
      consumedBytes: 0,
      crc: 0,
      ended: false,
      finished: false,
      failed: undefined,
      conn,
      timer: undefined,
      wake: undefined,
    };
    this.#transfers.set(key, transfer);
    const group = frame.group as GroupId;
    handler({
      from,
      group,
      meta: begin.meta.slice(),
      chunks: this.#stream(transfer, group),
      abort: (reason) => this.#fail(transfer, new TransportError("ERR_SNAPSHOT_ABORTED", reason), true),
    });
    this.#ack(transfer, false);
    return transfer;
  }

  #onFrame(transfer: IncomingTransfer, frame: Frame): void {
    const s = this.#deps.settings;
    if (transfer.failed !== undefined || transfer.finished) return;
    switch (frame.type) {
      case FrameType.snapshotChunk: {
        const { offset, data } = decodeSnapshotChunk(frame.payload);
        if (transfer.ended) throw new TransportError("ERR_SNAPSHOT_CORRUPT", "snapshot chunk after end");
        if (offset !== transfer.receivedBytes) {
          throw new TransportError(
            "ERR_SNAPSHOT_CORRUPT",
            `chunk at ${offset}, expected ${transfer.receivedBytes}`,
          );
        }
        if (data.length > s.snapshotChunkBytesMax) {
          throw new TransportError("ERR_FRAME_TOO_LARGE", `snapshot chunk of ${data.length} bytes`);
        }
        // The sender must respect the window; one that does not would make us buffer without bound.
        if (transfer.bufferedBytes + data.length > s.snapshotWindowChunksMax * s.snapshotChunkBytesMax) {
          throw new TransportError("ERR_SNAPSHOT_CORRUPT", "snapshot sender overran the flow-control window");
        }
        transfer.buffer.push(data);
        transfer.bufferedBytes += data.length;
        transfer.receivedBytes += data.length;
        transfer.crc = crc32(data, transfer.crc);
        break;
      }
      case FrameType.snapshotEnd: {
        const end = decodeSnapshotEnd(frame.payload);
        if (end.totalBytes !== transfer.receivedBytes || end.crc !== transfer.crc) {
          throw new TransportError(
            "ERR_SNAPSHOT_CORRUPT",
            `snapshot stream mismatch: ${transfer.receivedBytes} bytes crc 0x${transfer.crc.toString(16)}, ` +
              `sender says ${end.totalBytes} bytes crc 0x${end.crc.toString(16)}`,
          );
        }
        transfer.ended = true;
        break;
      }
      case FrameType.snapshotAbort:
        this.#fail(
          transfer,
          new TransportError("ERR_SNAPSHOT_ABORTED", `sender aborted: ${decodeSnapshotAbort(frame.payload)}`),
          false,
        );
        return;
      default:
        throw new TransportError(
          "ERR_FRAME_CORRUPT",
          `unexpected frame type ${frame.type} in a snapshot transfer`,
        );
    }
    this.#wakeConsumer(transfer);
  }

  async *#stream(transfer: IncomingTransfer, group: GroupId): AsyncGenerator<Uint8Array, void, undefined> {
    let completed = false;
    try {
      for (;;) {
        if (transfer.failed !== undefined) throw transfer.failed;
        const data = transfer.buffer.shift();
        if (data !== undefined) {
          transfer.bufferedBytes -= data.length;
          yield data;
          // The consumer asked for more, so it is done with `data`: only now does the window move.
          transfer.consumedBytes += data.length;
          this.#ack(transfer, false);
          continue;
        }
        if (transfer.ended) {
          transfer.finished = true;
          completed = true;
          this.#ack(transfer, true);
          transfer.timer = this.#forgetLater(transfer);
          return;
        }
        await new Promise<void>((resolve) => {
          transfer.wake = resolve;
        });
      }
    } finally {
      if (!completed && transfer.failed === undefined) {
        this.#fail(
          transfer,
          new TransportError("ERR_SNAPSHOT_ABORTED", `receiver of group ${group} stopped reading`),
          true,
        );
      }
    }
  }

  #ack(transfer: IncomingTransfer, done: boolean): void {
    const conn = transfer.conn;
    if (conn === undefined) return;
    const payload = encodeSnapshotAck({
      consumedBytes: transfer.consumedBytes,
      receivedBytes: transfer.receivedBytes,
      done,
    });
    conn.write([encodeFrame(FrameType.snapshotAck, 0, payload, this.#deps.settings.frameBytesMax)]);
  }

  #wakeConsumer(transfer: IncomingTransfer): void {
    const wake = transfer.wake;
    transfer.wake = undefined;
    wake?.();
  }

  /** Keeps a finished transfer long enough to answer a resume whose ack was lost, then drops it. */
  #forgetLater(transfer: IncomingTransfer): TimerHandle {
    return this.#deps.env.setTimer(this.#deps.settings.snapshotResumeTimeoutMs, () => {
      if (this.#transfers.get(transfer.key) === transfer) this.#transfers.delete(transfer.key);
    });
  }

  #fail(transfer: IncomingTransfer, error: TransportError, tellSender: boolean): void {
    if (transfer.failed !== undefined || transfer.finished) return;
    transfer.failed = error;
    transfer.timer?.cancel();
    transfer.timer = undefined;
    transfer.buffer.length = 0;
    transfer.bufferedBytes = 0;
    this.#transfers.delete(transfer.key);
    const conn = transfer.conn;
    transfer.conn = undefined;
    if (conn !== undefined) {
      if (tellSender) {
        conn.endAfterWrite(
          [
            encodeFrame(
              FrameType.snapshotAbort,
              0,
              encodeSnapshotAbort(error.message),
              this.#deps.settings.frameBytesMax,
            ),
          ],
          error,
        );
      } else {
        conn.close(error);
      }
    }
    this.#wakeConsumer(transfer);
  }
}
