import type { GroupId, NodeId } from "../raft/index.js";
import { groupId as toGroupId } from "../raft/index.js";
import type { Codec } from "./codec.js";
import type { TimerHandle, TransportEnv } from "./env.js";
import { TransportError } from "./errors.js";
import { concatBytes } from "./frame.js";
import type { FrameConnectionHandlers, FrameLink } from "./frame-connection.js";
import { MemoryConnection } from "./memory-connection.js";
import { resolveTransportSettings, type TransportSettings } from "./settings.js";
import { Sleepers } from "./sleepers.js";
import { SnapshotReceiver } from "./snapshot-receiver.js";
import { sendSnapshotStream } from "./snapshot-sender.js";
import type { InboundMessage, IncomingSnapshot, PeerAddress, Transport } from "./transport.js";

/** A probability as integers (no floats in decisions, so a seed replays exactly). */
export interface Odds {
  readonly numerator: number;
  readonly denominator: number;
}

/** The faults a {@link MemoryNetwork} applies to every message on a link. */
export interface LinkFaults {
  /** Chance a message vanishes silently (a lost packet). */
  readonly drop: Odds;
  /** Chance a message is delivered twice. */
  readonly duplicate: Odds;
  /** Delivery delay, uniform in [min, max] milliseconds of the env's clock. */
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  /** Whether messages may overtake each other (real connections keep order; UDP-like links do not). */
  readonly reorder: boolean;
}

/** No faults: every message arrives once, in order, on the next timer turn. */
export const noFaults: LinkFaults = {
  drop: { numerator: 0, denominator: 1 },
  duplicate: { numerator: 0, denominator: 1 },
  delayMinMs: 0,
  delayMaxMs: 0,
  reorder: false,
};

/** How a {@link MemoryNetwork} is built. */
export interface MemoryNetworkOptions<M> {
  /** Timers and randomness; a simulator passes a virtual clock and a seeded PRNG. */
  readonly env: TransportEnv;
  /** Messages in flight per link; beyond it a send is dropped and reported unreachable. */
  readonly peerQueueMessagesMax?: number;
  /** When given, every message is encoded and decoded on its way, as on the wire. */
  readonly codec?: Codec<M>;
  /** Faults on every link unless a link has its own. */
  readonly faults?: LinkFaults;
  /**
   * The snapshot protocol's limits and timings (chunk size, window, resume attempts and timeouts);
   * the TLS transport's defaults when absent.
   */
  readonly settings?: TransportSettings;
}

function chance(env: TransportEnv, odds: Odds): boolean {
  return odds.numerator > 0 && env.below(odds.denominator) < odds.numerator;
}

/**
 * The fault-injecting twin of the TLS transport: an in-memory network of {@link Transport}s for
 * unit tests of the runtime and for the simulator. Links can drop, delay, duplicate and reorder
 * messages, and nodes can be partitioned; all randomness and time come from the injected env.
 * Snapshots stream as the TLS transport streams them (the same sender and receiver, snapshot-sender.ts and snapshot-receiver.ts),
 * chunk by chunk over simulated connections that keep order and hide loss, as TCP does, but take
 * the link's delay for every frame and break when the link is cut or either node closes: a
 * transfer can stall, resume from the last chunk the receiver holds, or abort.
 */
export class MemoryNetwork<M> {
  readonly #options: MemoryNetworkOptions<M>;
  readonly #nodes = new Map<NodeId, MemoryTransport<M>>();
  readonly #linkFaults = new Map<string, LinkFaults>();
  readonly #cut = new Set<string>();
  readonly #inFlight = new Map<string, number>();
  readonly #lastDeliveryMs = new Map<string, number>();
  readonly #timers = new Set<TimerHandle>();
  /** Open snapshot connection ends, with the node each belongs to (closed ones are pruned lazily). */
  readonly #connections = new Map<MemoryConnection, NodeId>();
  #defaultFaults: LinkFaults;
  /** The snapshot protocol's settings, shared by every transport of the network. */
  readonly settings: TransportSettings;

  /** Creates an empty network. */
  constructor(options: MemoryNetworkOptions<M>) {
    this.#options = options;
    this.#defaultFaults = options.faults ?? noFaults;
    this.settings = options.settings ?? resolveTransportSettings();
  }

  /** Creates the transport of node `id` on this network (replacing a closed one: a restart). */
  transport(id: NodeId): MemoryTransport<M> {
    const existing = this.#nodes.get(id);
    if (existing !== undefined && !existing.closed) throw new Error(`node ${id} already has a transport`);
    const transport = new MemoryTransport<M>(this, id, this.#options.env);
    this.#nodes.set(id, transport);
    return transport;
  }

  /** Sets the faults of every link without its own. */
  setFaults(faults: LinkFaults): void {
    this.#defaultFaults = faults;
  }

  /** Sets the faults of the one-way link from -> to. */
  setLinkFaults(from: NodeId, to: NodeId, faults: LinkFaults): void {
    this.#linkFaults.set(linkKey(from, to), faults);
  }

  /** Cuts the one-way link from -> to: sends are dropped and reported unreachable. */
  cut(from: NodeId, to: NodeId): void {
    this.#cut.add(linkKey(from, to));
  }

  /** Splits the nodes into groups that cannot reach each other (both directions). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const from of a) for (const to of b) this.cut(from, to);
      }
    }
  }

  /** Cuts `id` off from every other node, both ways. */
  isolate(id: NodeId, others: readonly NodeId[]): void {
    this.partition([[id], others.filter((o) => o !== id)]);
  }

  /** Restores every link and removes every fault. */
  heal(): void {
    this.#cut.clear();
    this.#linkFaults.clear();
    this.#defaultFaults = noFaults;
  }

  /** Messages accepted for delivery and not yet delivered or lost, across all links. */
  get inFlight(): number {
    let total = 0;
    for (const count of this.#inFlight.values()) total += count;
    return total;
  }

  /** Cancels every pending delivery (end of a test or simulation). */
  close(): void {
    for (const timer of this.#timers) timer.cancel();
    this.#timers.clear();
    this.#inFlight.clear();
  }

  /** The group of `message` per the network's codec, or 0 without one. */
  groupOf(message: M): GroupId {
    return this.#options.codec?.groupOf?.(message) ?? toGroupId(0);
  }

  /** Whether messages from -> to currently get through the partition. */
  reachable(from: NodeId, to: NodeId): boolean {
    const target = this.#nodes.get(to);
    return target !== undefined && !target.closed && !this.#cut.has(linkKey(from, to));
  }

  /** Carries one message; false when it was refused (cut, closed peer or full link). */
  carry(from: NodeId, to: NodeId, message: M, group: GroupId): boolean {
    const key = linkKey(from, to);
    if (!this.reachable(from, to)) return false;
    const inFlight = this.#inFlight.get(key) ?? 0;
    if (inFlight >= (this.#options.peerQueueMessagesMax ?? 4096)) return false;
    const env = this.#options.env;
    const faults = this.#linkFaults.get(key) ?? this.#defaultFaults;
    if (chance(env, faults.drop)) return true;
    let payload = message;
    const codec = this.#options.codec;
    if (codec !== undefined) {
      const parts = codec.encode(message);
      const decoded = codec.decode(concatBytes(Array.isArray(parts) ? parts : [parts]));
      if (!decoded.ok)
        throw new TransportError("ERR_MESSAGE_DECODE", `codec cannot read its own output: ${decoded.error}`);
      payload = decoded.message;
    }
    const copies = chance(env, faults.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const spread = faults.delayMaxMs - faults.delayMinMs;
      let delayMs = faults.delayMinMs + (spread > 0 ? env.below(spread + 1) : 0);
      const now = env.nowMs();
      if (!faults.reorder) {
        // In-order links: never deliver before the previous message on this link.
        delayMs = Math.max(delayMs, (this.#lastDeliveryMs.get(key) ?? now) - now);
        this.#lastDeliveryMs.set(key, now + delayMs);
      }
      this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
      const timer = env.setTimer(delayMs, () => {
        this.#timers.delete(timer);
        this.#inFlight.set(key, Math.max(0, (this.#inFlight.get(key) ?? 1) - 1));
        // The partition is checked again at delivery: a message in flight when the link is cut is lost.
        if (!this.reachable(from, to)) return;
        this.#nodes.get(to)?.deliver({ from, group, message: payload });
      });
      this.#timers.add(timer);
    }
    return true;
  }

  /**
   * Opens a snapshot connection from -> to, as the TLS transport's dial does: one round trip over
   * the link (the handshake), then `to`'s transport takes the accepting end. Rejects with
   * ERR_CONNECTION_LOST (which the sender retries) when the link is down or `to` is closed.
   */
  dialSnapshot(from: NodeId, to: NodeId, handlers: FrameConnectionHandlers): Promise<FrameLink> {
    return new Promise((resolve, reject) => {
      const lost = (): void =>
        reject(new TransportError("ERR_CONNECTION_LOST", `node ${to} is unreachable for a snapshot`));
      const there = this.#wire(from, to);
      const back = this.#wire(to, from);
      there(
        () =>
          back(() => {
            const target = this.#nodes.get(to);
            const source = this.#nodes.get(from);
            if (target === undefined || target.closed || source === undefined || source.closed) {
              lost();
              return;
            }
            const { dialler, acceptor } = MemoryConnection.pair(
              handlers,
              there,
              back,
              this.settings.frameBytesMax,
            );
            for (const [conn] of this.#connections) if (conn.closed) this.#connections.delete(conn);
            this.#connections.set(dialler, from);
            this.#connections.set(acceptor, to);
            target.acceptSnapshot(from, acceptor);
            resolve(dialler);
          }, lost),
        lost,
      );
    });
  }

  /** Drops every snapshot connection end of `node` (it closed or crashed); peers learn it later. */
  dropConnections(node: NodeId): void {
    for (const [conn, owner] of this.#connections) {
      if (owner !== node) continue;
      this.#connections.delete(conn);
      conn.close(new TransportError("ERR_TRANSPORT_CLOSED", `node ${node} closed`));
    }
  }

  /**
   * One direction of a connection: each send takes the link's delay, never overtakes the one before
   * (connections keep order whatever the link's reordering), and is lost, breaking the connection,
   * when the link is cut or a node closed by the time it arrives.
   */
  #wire(from: NodeId, to: NodeId): (deliver: () => void, lost: () => void) => void {
    let lastDeliveryMs = 0;
    return (deliver, lost) => {
      const env = this.#options.env;
      const faults = this.#linkFaults.get(linkKey(from, to)) ?? this.#defaultFaults;
      const spread = faults.delayMaxMs - faults.delayMinMs;
      const now = env.nowMs();
      const at = Math.max(now + faults.delayMinMs + (spread > 0 ? env.below(spread + 1) : 0), lastDeliveryMs);
      lastDeliveryMs = at;
      const timer = env.setTimer(at - now, () => {
        this.#timers.delete(timer);
        const source = this.#nodes.get(from);
        if (this.reachable(from, to) && source !== undefined && !source.closed) deliver();
        else lost();
      });
      this.#timers.add(timer);
    };
  }
}

/**
 * One node's endpoint on a {@link MemoryNetwork}; behaves like the TLS transport as seen by the
 * node layer (bounded queues, unreachable reports, snapshots) without sockets or certificates.
 */
export class MemoryTransport<M> implements Transport<M> {
  readonly self: NodeId;
  readonly #network: MemoryNetwork<M>;
  readonly #env: TransportEnv;
  #peers: ReadonlyMap<NodeId, PeerAddress> = new Map();
  #closed = false;
  #messageHandler: ((inbound: InboundMessage<M>) => void) | undefined;
  #unreachableHandler: ((peer: NodeId) => void) | undefined;
  #snapshotHandler: ((snapshot: IncomingSnapshot) => void) | undefined;
  /** The codec's group lookup, when messages carry a group; set with {@link setGroupOf}. */
  #groupOf: ((message: M) => GroupId) | undefined;
  /** The receiving half of the snapshot protocol, shared with the TLS transport. */
  readonly #snapshots: SnapshotReceiver;
  readonly #sleepers: Sleepers;

  /** Created through {@link MemoryNetwork.transport}. */
  constructor(network: MemoryNetwork<M>, self: NodeId, env: TransportEnv) {
    this.#network = network;
    this.self = self;
    this.#env = env;
    this.#sleepers = new Sleepers(env, () => this.#closed);
    this.#snapshots = new SnapshotReceiver({
      env,
      settings: network.settings,
      handler: () => (this.#closed ? undefined : this.#snapshotHandler),
    });
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A pseudo-address: memory transports do not listen. */
  get listenAddress(): PeerAddress | undefined {
    return { host: "memory", port: this.self };
  }

  /** Tells the transport how to find a message's group (the TLS transport asks its codec). */
  setGroupOf(groupOf: (message: M) => GroupId): void {
    this.#groupOf = groupOf;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  send(to: NodeId, message: M): void {
    // Like the TLS transport: after close, messages are dropped quietly.
    if (this.#closed) return;
    const known = this.#peers.has(to);
    const group = this.#groupOf?.(message) ?? this.#network.groupOf(message);
    if (!known || !this.#network.carry(this.self, to, message, group)) this.#unreachableHandler?.(to);
  }

  isConnected(peer: NodeId): boolean {
    return !this.#closed && this.#peers.has(peer) && this.#network.reachable(this.self, peer);
  }

  flush(): void {
    // Delivery is scheduled by the network as each message is sent: nothing waits for a flush.
  }

  onMessage(handler: (inbound: InboundMessage<M>) => void): void {
    this.#messageHandler = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.#unreachableHandler = handler;
  }

  onSnapshot(handler: (snapshot: IncomingSnapshot) => void): void {
    this.#snapshotHandler = handler;
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
    return sendSnapshotStream(
      {
        env: this.#env,
        settings: this.#network.settings,
        dialSnapshot: (peer, handlers) => this.#network.dialSnapshot(this.self, peer, handlers),
        sleep: (delayMs) => this.#sleepers.sleep(delayMs),
        isClosed: () => this.#closed,
      },
      to,
      group,
      meta,
      chunks,
    );
  }

  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void {
    this.#peers = new Map(peers);
  }

  /**
   * Closes the transport; for the simulator this is also a crash. Its connections drop first, so
   * nothing it would say while closing (a receiver's abort) leaves: its peers see the connections
   * break, and a sender then resumes or gives up as against a crashed TLS peer.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#network.dropConnections(this.self);
    this.#snapshots.close();
    this.#sleepers.wakeAll();
    return Promise.resolve();
  }

  /** Called by the network at delivery time. */
  deliver(inbound: InboundMessage<M>): void {
    if (!this.#closed) this.#messageHandler?.(inbound);
  }

  /** Called by the network: takes the accepting end of a snapshot connection from `from`. */
  acceptSnapshot(from: NodeId, conn: FrameLink): void {
    if (this.#closed) conn.close(new TransportError("ERR_TRANSPORT_CLOSED", "transport closed"));
    else this.#snapshots.accept(from, conn);
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
