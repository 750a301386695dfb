// One node process's meeting point between the transport and its Raft groups: routes arriving
// Raft messages to their group, sends each group's messages, reports unreachable peers to the
// cores, carries calls between nodes (a follower's writes handed to its leader), and keeps a
// directory of peers' names and client addresses from the peer info they announce.
import type { GroupId, Message, NodeId, SnapshotMessage } from "../raft/index.js";
import type { Transport } from "../transport/index.js";
import { decodeRaftMessage, encodeRaftMessage } from "../transport/index.js";
import type { Cancel, Env } from "./env.js";
import type { NodeWireMessage, PeerInfo, PeerStateHash } from "./node-wire.js";
import { type CallHandler, PeerCalls } from "./peer-calls.js";
import type { MessageSender } from "./ports.js";

/** What the host needs of a group. */
export interface HostedGroup {
  receive(message: Message): void;
  reportUnreachable(peer: NodeId): void;
  /** Stores a snapshot streamed by the leader, then steps its message into the core. */
  receiveSnapshot(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** A peer as last heard of. */
export interface PeerEntry extends PeerInfo {
  /** Monotonic time the peer was last heard from (any message). */
  readonly lastSeenMs: number;
}

/** Settings of the host. */
export interface NodeHostOptions {
  readonly self: PeerInfo;
  readonly transport: Transport<NodeWireMessage>;
  readonly env: Env;
  /** How often to announce this node's peer info. Default 1,000 ms. */
  readonly announceIntervalMs?: number;
  /** This node's latest state hashes, announced with its info (the cross-replica state check). */
  readonly stateHashes?: () => readonly PeerStateHash[];
}

/** Routes messages between the transport and this node's groups. */
export class NodeHost {
  readonly #options: NodeHostOptions;
  readonly #groups = new Map<GroupId, HostedGroup>();
  readonly #peers = new Map<NodeId, PeerEntry>();
  readonly #known = new Set<NodeId>();
  readonly #calls: PeerCalls;
  #cancelAnnounce: Cancel = () => {};
  #closed = false;

  /** Creates the host and subscribes to the transport. */
  constructor(options: NodeHostOptions) {
    this.#options = options;
    this.#calls = new PeerCalls(options.transport, options.env);
    options.transport.onMessage(({ from, message }) => this.#receive(from, message));
    options.transport.onUnreachable((peer) => {
      this.#calls.peerUnreachable(peer);
      for (const group of this.#groups.values()) group.reportUnreachable(peer);
    });
    options.transport.onSnapshot((incoming) => {
      // The meta is the leader's snapshot message itself, so the core gets exactly what was sent.
      const decoded = decodeRaftMessage(incoming.meta);
      const message = decoded.ok ? decoded.message : undefined;
      const group = message === undefined ? undefined : this.#groups.get(message.groupId);
      if (
        message?.type !== "snapshot" ||
        message.from !== incoming.from ||
        group === undefined ||
        this.#closed
      ) {
        incoming.abort("not a snapshot this node expects");
        return;
      }
      group.receiveSnapshot(message, incoming.chunks).catch((error: unknown) => {
        incoming.abort(error instanceof Error ? error.message : String(error));
      });
    });
  }

  /** Streams a stored snapshot to the peer a snapshot message names. */
  sendSnapshot(message: SnapshotMessage, chunks: () => AsyncIterable<Uint8Array>): Promise<void> {
    return this.#options.transport.sendSnapshot(
      message.to,
      message.groupId,
      encodeRaftMessage(message),
      chunks(),
    );
  }

  /**
   * Sends a request to `to` and resolves with the answer of its call handler. Rejects with a
   * NodeError: ERR_UNAVAILABLE when nothing was done (no connection, refused), ERR_TIMEOUT when
   * the outcome is unknown, ERR_SHUTTING_DOWN. See {@link PeerCalls.call}.
   */
  call(to: NodeId, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.#calls.call(to, body, timeoutMs);
  }

  /** Whether this node's own (dialed) link to `peer` is up: what it sends to `peer` goes out now. */
  isConnected(peer: NodeId): boolean {
    return this.#options.transport.isConnected(peer);
  }

  /** Sets the handler of calls from peers (the leader side of a handed-over write). */
  onCall(handler: CallHandler): void {
    this.#calls.onCall(handler);
  }

  /** This node's own info. */
  get self(): PeerInfo {
    return this.#options.self;
  }

  /** Registers a group so its messages reach it. */
  attach(id: GroupId, group: HostedGroup): void {
    this.#groups.set(id, group);
  }

  /** A sender for a group's runtime. */
  sender(): MessageSender {
    return {
      send: (messages, urgent) => {
        for (const message of messages) {
          if (this.#closed) return;
          this.#options.transport.send(message.to, { kind: "raft", message });
        }
        if (urgent === true && messages.length > 0) this.#options.transport.flush();
      },
    };
  }

  /** Sets the peers to announce to (the current members other than this node). */
  setMembers(ids: Iterable<NodeId>): void {
    this.#known.clear();
    for (const id of ids) if (id !== this.#options.self.id) this.#known.add(id);
  }

  /** Every peer heard from, by id. */
  peers(): ReadonlyMap<NodeId, PeerEntry> {
    return this.#peers;
  }

  /** The peers that announced where peers reach them within the last `maxAgeMs`, by id. */
  announcedPeerAddresses(maxAgeMs: number): Map<NodeId, string> {
    const now = this.#options.env.monotonicMs();
    const out = new Map<NodeId, string>();
    for (const [id, entry] of this.#peers) {
      if (entry.peerAddress !== undefined && now - entry.lastSeenMs <= maxAgeMs)
        out.set(id, entry.peerAddress);
    }
    return out;
  }

  /** Starts announcing this node's info to its peers. */
  startAnnouncing(): void {
    const announce = () => {
      if (this.#closed) return;
      const info = this.#announced();
      for (const id of this.#known) this.#options.transport.send(id, { kind: "peer-info", info });
      this.#cancelAnnounce = this.#options.env.after(this.#options.announceIntervalMs ?? 1_000, announce);
    };
    announce();
  }

  /** Stops announcing and routing. */
  close(): void {
    this.#closed = true;
    this.#cancelAnnounce();
    this.#calls.close();
  }

  /** This node's info as announced now: its fixed self plus its latest state hashes. */
  #announced(): PeerInfo {
    const hashes = this.#options.stateHashes?.() ?? [];
    return hashes.length === 0 ? this.#options.self : { ...this.#options.self, stateHashes: hashes };
  }

  #receive(from: NodeId, wire: NodeWireMessage): void {
    if (this.#closed) return;
    const seen = this.#peers.get(from);
    if (wire.kind === "peer-info") {
      // Trust only what the authenticated sender says about itself.
      if (wire.info.id !== from) return;
      const fresh = seen === undefined;
      this.#peers.set(from, { ...wire.info, lastSeenMs: this.#options.env.monotonicMs() });
      // Answer a newcomer at once so both sides learn each other without waiting a period.
      if (fresh) this.#options.transport.send(from, { kind: "peer-info", info: this.#announced() });
      return;
    }
    if (seen !== undefined) this.#peers.set(from, { ...seen, lastSeenMs: this.#options.env.monotonicMs() });
    switch (wire.kind) {
      case "call":
        this.#calls.receiveCall(from, wire.run, wire.seq, wire.body);
        return;
      case "reply":
        this.#calls.receiveReply(from, wire.run, wire.seq, wire.status, wire.body);
        return;
      case "raft":
        // The transport authenticated the sender; a message claiming another sender is dropped.
        if (wire.message.from !== from) return;
        this.#groups.get(wire.message.groupId)?.receive(wire.message);
        return;
    }
  }
}
