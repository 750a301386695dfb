// The receiving end of snapshot streaming (the protocol is described in snapshot-sender.ts): accepts
// snapshot connections, hands each new transfer to the application as a stream, and keeps a broken
// transfer so its sender can resume it.
import type { GroupId, NodeId } from "../raft/index.js";
import { crc32 } from "../util/index.js";
import type { TimerHandle, TransportEnv } from "./env.js";
import { TransportError } from "./errors.js";
import { encodeFrame, type Frame, FrameType } from "./frame.js";
import type { FrameLink } from "./frame-connection.js";
import type { TransportSettings } from "./settings.js";
import { transferError } from "./snapshot-sender.js";
import {
  decodeSnapshotAbort,
  decodeSnapshotBegin,
  decodeSnapshotChunk,
  decodeSnapshotEnd,
  encodeSnapshotAbort,
  encodeSnapshotAck,
} from "./snapshot-wire.js";
import type { IncomingSnapshot } from "./transport.js";

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
          const failure = transferError(error);
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
