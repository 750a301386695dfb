import type { GroupId, NodeId } from "../raft/index.js";
import type { TransportError } from "./errors.js";

/** Where a peer listens. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** One message as it arrived, with the authenticated sender and the frame's group. */
export interface InboundMessage<M> {
  readonly from: NodeId;
  readonly group: GroupId;
  readonly message: M;
}

/**
 * A snapshot arriving from a peer. `chunks` yields the stream's bytes in order as the sender
 * provides them; it completes only after the whole stream arrived and its length and CRC matched,
 * and throws a TransportError (ERR_SNAPSHOT_ABORTED, ERR_SNAPSHOT_CORRUPT) otherwise. The sender
 * is paced by how fast `chunks` is consumed, so a consumer that writes to disk gets back-pressure
 * for free. A consumer must not install the snapshot before `chunks` completed normally.
 */
export interface IncomingSnapshot {
  readonly from: NodeId;
  readonly group: GroupId;
  readonly meta: Uint8Array;
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Gives up on the transfer; the sender's `sendSnapshot` rejects with ERR_SNAPSHOT_ABORTED. */
  abort(reason: string): void;
}

/** Something worth a log line or a metric; the transport never logs by itself. */
export type TransportEvent =
  | { readonly kind: "listening"; readonly address: PeerAddress }
  | { readonly kind: "connected"; readonly peer: NodeId }
  | { readonly kind: "disconnected"; readonly peer: NodeId; readonly error: TransportError }
  | { readonly kind: "dial-failed"; readonly peer: NodeId; readonly error: TransportError }
  | { readonly kind: "inbound-accepted"; readonly peer: NodeId; readonly purpose: "messages" | "snapshot" }
  | { readonly kind: "inbound-refused"; readonly claimed: number | undefined; readonly error: TransportError }
  | { readonly kind: "inbound-dropped"; readonly peer: NodeId; readonly error: TransportError }
  | { readonly kind: "message-dropped"; readonly peer: NodeId; readonly error: TransportError };

/**
 * Carries opaque messages of type `M` between the nodes of a cluster. The node layer holds one per
 * process and shares it between its Raft groups.
 *
 * Delivery is best effort, in order per (sender, receiver) pair while a connection lasts: messages
 * may be lost when a connection breaks or a queue overflows, which Raft tolerates (it retries), and
 * the transport says so through `onUnreachable` so the core can slow down (etcd's ReportUnreachable).
 */
export interface Transport<M> {
  /** Starts listening and dialling the known peers. */
  start(): Promise<void>;
  /** The address actually listened on (useful with port 0), once started. */
  readonly listenAddress: PeerAddress | undefined;
  /**
   * Queues `message` for `to` and returns at once. Never blocks and never throws for an unreachable
   * or unknown peer: when the peer's queue is full (or the peer unknown) the message is dropped and
   * `onUnreachable(to)` is called. After `close()` messages are dropped quietly (a shutdown racing
   * the ready loop must not crash it). Throws ERR_FRAME_TOO_LARGE for a message that can never be
   * sent: that is a bug in the caller's batching, not a network condition.
   */
  send(to: NodeId, message: M): void;
  /**
   * Writes every message queued so far to the network now, rather than with the rest of this turn
   * of the event loop's messages (the batching `send` does by default). For messages on the
   * critical path of a client's write: a leader's new entries, a follower's acknowledgement.
   */
  flush(): void;
  /** Sets the handler for arriving messages (replacing any earlier one). */
  onMessage(handler: (inbound: InboundMessage<M>) => void): void;
  /** Sets the handler told when a peer could not be reached or a message to it was dropped. */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /** Sets the handler for arriving snapshot streams. Without one, arriving snapshots are refused. */
  onSnapshot(handler: (snapshot: IncomingSnapshot) => void): void;
  /**
   * Streams a snapshot to `to`: `meta` describes it, `chunks` yields its bytes once, in order.
   * Resumes from the last chunk the receiver holds after a broken connection. Resolves once the
   * receiver consumed the whole stream; rejects with a TransportError when it gives up.
   */
  sendSnapshot(
    to: NodeId,
    group: GroupId,
    meta: Uint8Array,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void>;
  /**
   * Whether a message sent to `peer` now would go out on an established connection. A caller that
   * must know whether a request left this node (a write handed to the leader) checks it first: a
   * message sent while it is false waits in the queue for a connection that may never come.
   */
  isConnected(peer: NodeId): boolean;
  /** Replaces the peer set (a membership change): new peers are dialled, removed ones dropped. */
  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void;
  /** Stops listening, closes every connection and cancels every timer. */
  close(): Promise<void>;
}
