// Level 2's peer transport: what a node built by CairnNode talks through in the simulator. Messages
// (Raft, peer info, a follower's calls to its leader) travel on the SimNetwork, encoded and decoded
// with the node wire codec as on a socket, with its latency, loss, duplication, reordering and
// partitions; snapshots stream over the run's SimSnapshotLinks (the transport's own chunked
// protocol over simulated connections). A cut link is reported unreachable to the sender, as the
// TLS transport reports a connection it cannot make, and `isConnected` says whether the link is up.
import { type NodeWireMessage, nodeWireCodec } from "../../src/node/index.js";
import type { GroupId, NodeId } from "../../src/raft/index.js";
import { concatBytes } from "../../src/transport/frame.js";
import {
  type InboundMessage,
  type IncomingSnapshot,
  type PeerAddress,
  type Transport,
  TransportError,
} from "../../src/transport/index.js";
import type { SimNetwork } from "./sim-network.js";
import type { SimSnapshotEndpoint, SimSnapshotLinks } from "./sim-snapshot-links.js";

/** What the harness learns of a transport's traffic (to count snapshots and aim power losses). */
export interface TransportObserver {
  /**
   * The node sent an acknowledgement that promises its disk holds something: an accepted append
   * or a granted vote (the runtime sends these only once the Ready's writes are durable).
   */
  readonly acknowledged: () => void;
  /**
   * The node told a leader it no longer holds entries it acknowledged (a rejection flagged
   * `entriesLost`): a durability failure, unless its disk was damaged (never in the simulator) or
   * recovery cut a tail it cannot rule out having acknowledged.
   */
  readonly reportedLoss: () => void;
  /** A snapshot stream starts towards a peer. */
  readonly sent: () => void;
  /** A stream this node sent gave up (the peer stayed unreachable, refused or died). */
  readonly aborted: () => void;
  /** A stream from a peer arrives, before the node starts storing it. */
  readonly arrived: () => void;
}

/** One node incarnation's transport; closing it is the process dying (its connections break). */
export class SimTransport implements Transport<NodeWireMessage> {
  readonly self: NodeId;
  readonly #network: SimNetwork<NodeWireMessage>;
  readonly #snapshots: SimSnapshotEndpoint;
  readonly #observer: TransportObserver;
  #peers: ReadonlyMap<NodeId, PeerAddress> = new Map();
  #closed = false;
  #onMessage: ((inbound: InboundMessage<NodeWireMessage>) => void) | undefined;
  #onUnreachable: ((peer: NodeId) => void) | undefined;
  #onSnapshot: ((snapshot: IncomingSnapshot) => void) | undefined;

  /** The transport of a new incarnation of `self` (its snapshot endpoint replaces the previous one). */
  constructor(
    self: NodeId,
    network: SimNetwork<NodeWireMessage>,
    links: SimSnapshotLinks,
    observer: TransportObserver,
  ) {
    this.self = self;
    this.#network = network;
    this.#observer = observer;
    this.#snapshots = links.endpoint(self, (incoming) => {
      const handler = this.#closed ? undefined : this.#onSnapshot;
      if (handler === undefined) {
        incoming.abort(`node ${self} takes no snapshots`);
        return;
      }
      observer.arrived();
      handler(incoming);
    });
  }

  get listenAddress(): PeerAddress {
    return { host: "sim", port: this.self };
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  send(to: NodeId, message: M): void {
    if (this.#closed) return;
    if (!this.#peers.has(to)) {
      this.#onUnreachable?.(to);
      return;
    }
    // Sent on a cut link too, so the network counts what the partition blocked.
    this.#network.send(this.self, to, roundTrip(message));
    if (this.#network.isBlocked(this.self, to)) this.#onUnreachable?.(to);
    else if (promisesDurability(message)) this.#observer.acknowledged();
    if (message.kind === "raft" && message.message.type === "append-response" && message.message.entriesLost)
      this.#observer.reportedLoss();
  }

  flush(): void {
    // The network schedules each message as it is sent.
  }

  isConnected(peer: NodeId): boolean {
    return !this.#closed && this.#peers.has(peer) && !this.#network.isBlocked(this.self, peer);
  }

  onMessage(handler: (inbound: InboundMessage<NodeWireMessage>) => void): void {
    this.#onMessage = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.#onUnreachable = handler;
  }

  onSnapshot(handler: (snapshot: IncomingSnapshot) => void): void {
    this.#onSnapshot = handler;
  }

  sendSnapshot(
    to: NodeId,
    group: GroupId,
    meta: Uint8Array,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.#closed)
      return Promise.reject(new TransportError("ERR_TRANSPORT_CLOSED", "sendSnapshot after close"));
    if (!this.#peers.has(to))
      return Promise.reject(new TransportError("ERR_PEER_UNKNOWN", `node ${to} is not a peer`));
    this.#observer.sent();
    return this.#snapshots.sendSnapshot(to, group, meta, chunks).catch((error: unknown) => {
      this.#observer.aborted();
      throw error;
    });
  }

  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void {
    this.#peers = new Map(peers);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#snapshots.close();
    return Promise.resolve();
  }

  /** Hands over a message the network delivered to this node (dropped once the process died). */
  deliver(from: NodeId, message: NodeWireMessage): void {
    if (this.#closed) return;
    this.#onMessage?.({ from, group: nodeWireCodec.groupOf(message), message });
  }
}

type M = NodeWireMessage;

/** Whether a message tells its receiver that the sender's disk holds entries or a vote. */
function promisesDurability(message: M): boolean {
  if (message.kind !== "raft") return false;
  const raft = message.message;
  return (
    (raft.type === "append-response" && !raft.reject) ||
    (raft.type === "vote-response" && !raft.reject && !raft.preVote)
  );
}

/** The message as the receiver decodes it from the bytes the sender would write. */
function roundTrip(message: M): M {
  const parts = nodeWireCodec.encode(message);
  const decoded = nodeWireCodec.decode(concatBytes(Array.isArray(parts) ? parts : [parts]));
  if (!decoded.ok)
    throw new TransportError("ERR_MESSAGE_DECODE", `cannot read its own output: ${decoded.error}`);
  return decoded.message;
}
