import type { Socket } from "node:net";
import { createServer, type Server, type TLSSocket, connect as tlsConnect } from "node:tls";
import { type GroupId, type NodeId, groupId as toGroupId } from "../raft/index.js";
import type { Codec } from "./codec.js";
import { systemTransportEnv, type TransportEnv } from "./env.js";
import { asTransportError, TransportError } from "./errors.js";
import { encodeFrame, type Frame, FrameType } from "./frame.js";
import { FrameConnection, type FrameConnectionHandlers } from "./frame-connection.js";
import {
  type ConnectionPurpose,
  decodeHello,
  decodeWelcome,
  describeWelcome,
  encodeHello,
  encodeWelcome,
  type Hello,
  PROTOCOL_VERSION,
  type Welcome,
} from "./handshake.js";
import { certificateNames, defaultNodeIdentity } from "./identity.js";
import { PeerLink } from "./peer-link.js";
import { resolveTransportSettings, type TransportSettings } from "./settings.js";
import { Sleepers } from "./sleepers.js";
import { SnapshotReceiver } from "./snapshot-receiver.js";
import { sendSnapshotStream } from "./snapshot-sender.js";
import type {
  InboundMessage,
  IncomingSnapshot,
  PeerAddress,
  Transport,
  TransportEvent,
} from "./transport.js";

/** PEM material for mutual TLS: the cluster CA, this node's certificate and its private key. */
export interface TlsMaterial {
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** Everything a {@link TlsTransport} is built from. */
export interface TlsTransportOptions<M> {
  /** This node. */
  readonly self: NodeId;
  /** The cluster this node belongs to; a peer of another cluster is refused. */
  readonly clusterId: string;
  /** Where to listen; port 0 picks a free port (see `listenAddress`). */
  readonly listen: PeerAddress;
  readonly tls: TlsMaterial;
  readonly codec: Codec<M>;
  /** The peers to dial at start; `setPeers` replaces them. */
  readonly peers?: ReadonlyMap<NodeId, PeerAddress>;
  /** Whether `id` may connect to us; defaults to "is in the current peer set". */
  readonly isMember?: (id: NodeId) => boolean;
  /** The certificate name that proves identity `id`; defaults to `node-<id>`. */
  readonly identityOf?: (id: NodeId) => string;
  readonly settings?: Partial<TransportSettings>;
  readonly env?: TransportEnv;
  /** Receives every {@link TransportEvent}, for logs and metrics. */
  readonly onEvent?: (event: TransportEvent) => void;
  /**
   * A testing facility: where to dial instead of a peer's member address, keyed by that address as
   * `host:port`. The real-process fault suite points node A at a fault proxy per link A->B this
   * way; each node sends only on the connections it dials, so one proxy holds exactly one direction
   * of one pair. Identity is still checked end to end: the certificate that answers must name the
   * peer, whoever relays the bytes.
   */
  readonly dialOverrides?: ReadonlyMap<string, PeerAddress>;
}

const HANDSHAKE_FRAME_BYTES_MAX = 4096;

/**
 * The production transport: framed messages over mutual TLS 1.3, one outbound connection per peer
 * (each node dials every peer and sends only on its own outbound connection, so two nodes never
 * race to decide whose connection wins), and a dedicated connection per snapshot transfer.
 */
export class TlsTransport<M> implements Transport<M> {
  readonly #options: TlsTransportOptions<M>;
  readonly #settings: TransportSettings;
  readonly #env: TransportEnv;
  readonly #identityOf: (id: NodeId) => string;
  readonly #links = new Map<NodeId, PeerLink>();
  /** The newest authenticated inbound message connection per peer. */
  readonly #inbound = new Map<NodeId, FrameConnection>();
  /** Every open connection, so `close()` leaves nothing behind. */
  readonly #connections = new Set<FrameConnection>();
  readonly #sleepers: Sleepers;
  readonly #rawSockets = new Set<Socket>();
  readonly #snapshots: SnapshotReceiver;
  #peers: ReadonlyMap<NodeId, PeerAddress>;
  #server: Server | undefined;
  #listenAddress: PeerAddress | undefined;
  #started = false;
  #closed = false;
  #messageHandler: ((inbound: InboundMessage<M>) => void) | undefined;
  #unreachableHandler: ((peer: NodeId) => void) | undefined;
  #snapshotHandler: ((snapshot: IncomingSnapshot) => void) | undefined;

  /** Creates a transport; nothing listens or dials until {@link start}. */
  constructor(options: TlsTransportOptions<M>) {
    this.#options = options;
    this.#settings = resolveTransportSettings(options.settings);
    this.#env = options.env ?? systemTransportEnv();
    this.#sleepers = new Sleepers(this.#env, () => this.#closed);
    this.#identityOf = options.identityOf ?? defaultNodeIdentity;
    const peers = new Map(options.peers ?? []);
    peers.delete(options.self);
    this.#peers = peers;
    this.#snapshots = new SnapshotReceiver({
      env: this.#env,
      settings: this.#settings,
      handler: () => this.#snapshotHandler,
    });
    this.#syncLinks();
  }

  /** The address listened on, once started. */
  get listenAddress(): PeerAddress | undefined {
    return this.#listenAddress;
  }

  /** The settings in force (defaults merged with the options). */
  get settings(): TransportSettings {
    return this.#settings;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error("transport already started");
    this.#started = true;
    const { tls, listen } = this.#options;
    const server = createServer(
      {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        minVersion: "TLSv1.3",
        // Mutual TLS: the dialer must present a certificate chained to the cluster CA.
        requestCert: true,
        rejectUnauthorized: true,
        // Node's default is 120 s; a dialer stuck in the TLS handshake holds a connection slot.
        handshakeTimeout: this.#settings.handshakeTimeoutMs,
      },
      (socket) => this.#onInbound(socket),
    );
    server.maxConnections = this.#settings.inboundConnectionsMax;
    // Raw sockets still in their TLS handshake are not yet FrameConnections; close() must end them too.
    server.on("connection", (raw: Socket) => {
      this.#rawSockets.add(raw);
      raw.once("close", () => this.#rawSockets.delete(raw));
    });
    server.on("tlsClientError", (cause: Error) => {
      this.#emit({
        kind: "inbound-refused",
        claimed: undefined,
        error: new TransportError("ERR_TLS", `TLS handshake with a dialer failed: ${cause.message}`, {
          cause,
        }),
      });
    });
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(listen.port, listen.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      // Listening failed (say, the port is taken): leave the transport startable again.
      this.#server = undefined;
      this.#started = false;
      throw error;
    }
    const address = server.address();
    if (address !== null && typeof address === "object") {
      this.#listenAddress = { host: address.address, port: address.port };
      this.#emit({ kind: "listening", address: this.#listenAddress });
    }
    for (const link of this.#links.values()) link.connect();
  }

  flush(): void {
    for (const link of this.#links.values()) link.flushNow();
  }

  send(to: NodeId, message: M): void {
    if (this.#closed) {
      this.#emit({
        kind: "message-dropped",
        peer: to,
        error: new TransportError("ERR_TRANSPORT_CLOSED", "send after close"),
      });
      return;
    }
    // Encode first: a message too large for a frame is the caller's bug, whatever the peer's state.
    const group = this.#options.codec.groupOf?.(message) ?? 0;
    const frame = encodeFrame(
      FrameType.message,
      group,
      this.#options.codec.encode(message),
      this.#settings.frameBytesMax,
    );
    const link = this.#links.get(to);
    if (link === undefined) {
      this.#drop(to, new TransportError("ERR_PEER_UNKNOWN", `node ${to} is not a known peer`));
      return;
    }
    if (!link.enqueue(frame)) {
      this.#drop(
        to,
        new TransportError(
          "ERR_QUEUE_FULL",
          `queue for node ${to} is full (${this.#settings.peerQueueMessagesMax})`,
        ),
      );
    }
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
    return sendSnapshotStream(
      {
        env: this.#env,
        settings: this.#settings,
        dialSnapshot: (peer, handlers) => {
          const address = this.#peers.get(peer);
          if (address === undefined) {
            return Promise.reject(new TransportError("ERR_PEER_UNKNOWN", `node ${peer} is not a known peer`));
          }
          return this.#dial(peer, address, "snapshot", handlers);
        },
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
    const next = new Map(peers);
    next.delete(this.#options.self);
    this.#peers = next;
    if (!this.#closed) this.#syncLinks();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    this.#snapshots.close();
    this.#sleepers.wakeAll();
    for (const conn of [...this.#connections]) {
      conn.close();
      // A connection half-closed after a refusal would otherwise linger until its peer hangs up.
      conn.socket.destroy();
    }
    this.#connections.clear();
    for (const raw of this.#rawSockets) raw.destroy();
    this.#rawSockets.clear();
    this.#inbound.clear();
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Breaks the outbound connection to `peer` as a network fault would (for tests and operators). */
  dropConnection(peer: NodeId): void {
    this.#links.get(peer)?.dropConnection();
  }

  /** Whether the outbound connection to `peer` is open and handshaken. */
  isConnected(peer: NodeId): boolean {
    return this.#links.get(peer)?.connected ?? false;
  }

  #emit(event: TransportEvent): void {
    this.#options.onEvent?.(event);
  }

  #drop(peer: NodeId, error: TransportError): void {
    this.#emit({ kind: "message-dropped", peer, error });
    this.#unreachableHandler?.(peer);
  }

  /** Brings the outbound links in line with the peer set. */
  #syncLinks(): void {
    for (const [id, link] of this.#links) {
      const address = this.#peers.get(id);
      if (address === undefined || address.host !== link.address.host || address.port !== link.address.port) {
        link.close();
        this.#links.delete(id);
      }
    }
    for (const [id, address] of this.#peers) {
      if (this.#links.has(id)) continue;
      const link = new PeerLink(id, address, {
        env: this.#env,
        settings: this.#settings,
        dial: (peer, to, handlers) => this.#dial(peer, to, "messages", handlers),
        emit: (event) => this.#emit(event),
        reportUnreachable: (peer) => this.#unreachableHandler?.(peer),
      });
      this.#links.set(id, link);
      // Before start() the link only queues; start() dials every link.
      if (this.#started) link.connect();
    }
    // A removed member's inbound connection goes too: it may no longer talk to us.
    for (const [id, conn] of this.#inbound) {
      if (!this.#isMember(id)) conn.close(new TransportError("ERR_PEER_UNKNOWN", `node ${id} was removed`));
    }
  }

  #isMember(id: NodeId): boolean {
    return this.#options.isMember?.(id) ?? this.#peers.has(id);
  }

  /** Tracks `conn` until it closes. */
  #track(conn: FrameConnection): void {
    this.#connections.add(conn);
    conn.socket.once("close", () => this.#connections.delete(conn));
  }

  /**
   * Opens a connection to `peer` for `purpose`: TLS 1.3 with our client certificate, the peer's
   * certificate checked against the CA and against the name of the node we meant to reach, then
   * hello/welcome. Installs `handlers` and resolves once the peer accepted us.
   */
  #dial(
    peer: NodeId,
    address: PeerAddress,
    purpose: ConnectionPurpose,
    handlers: FrameConnectionHandlers,
  ): Promise<FrameConnection> {
    if (this.#closed) return Promise.reject(new TransportError("ERR_TRANSPORT_CLOSED", "transport closed"));
    const { tls } = this.#options;
    const expected = this.#identityOf(peer);
    const via = this.#options.dialOverrides?.get(`${address.host}:${address.port}`) ?? address;
    return new Promise((resolve, reject) => {
      let settled = false;
      let secured = false;
      const socket = tlsConnect({
        host: via.host,
        port: via.port,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        minVersion: "TLSv1.3",
        // We reach peers by address, but trust them by node identity: the certificate must name the
        // node we meant to dial, whatever IP it answers on.
        checkServerIdentity: (_host, cert) =>
          certificateNames(cert).includes(expected)
            ? undefined
            : new TransportError(
                "ERR_HANDSHAKE_REJECTED",
                `peer at ${via.host}:${via.port} is not ${expected} (certificate names: ${certificateNames(cert).join(", ")})`,
              ),
      });
      socket.setNoDelay(true);
      const timer = this.#env.setTimer(this.#settings.handshakeTimeoutMs, () =>
        conn.close(new TransportError("ERR_HANDSHAKE_TIMEOUT", `no welcome from node ${peer} in time`)),
      );
      const conn = new FrameConnection(socket, HANDSHAKE_FRAME_BYTES_MAX, {
        onFrame: (frame) => {
          let welcome: Welcome;
          try {
            if (frame.type !== FrameType.welcome) {
              throw new TransportError("ERR_FRAME_CORRUPT", `expected welcome, got frame type ${frame.type}`);
            }
            welcome = decodeWelcome(frame.payload);
          } catch (error) {
            conn.close(frameError(error));
            return;
          }
          if (!welcome.accepted) {
            conn.close(
              new TransportError(
                welcome.reason === "not-member" ? "ERR_PEER_UNKNOWN" : "ERR_HANDSHAKE_REJECTED",
                `node ${peer} ${describeWelcome(welcome)}`,
              ),
            );
            return;
          }
          timer.cancel();
          settled = true;
          conn.decoder.frameBytesMax = this.#settings.frameBytesMax;
          conn.setHandlers(handlers);
          resolve(conn);
        },
        onClose: (error) => {
          timer.cancel();
          if (settled) return;
          settled = true;
          reject(classifyDialError(error, secured, peer));
        },
      });
      this.#track(conn);
      socket.once("secureConnect", () => {
        secured = true;
        const hello: Hello = {
          protocolVersion: PROTOCOL_VERSION,
          purpose,
          nodeId: this.#options.self,
          clusterId: this.#options.clusterId,
        };
        conn.write([encodeFrame(FrameType.hello, 0, encodeHello(hello), HANDSHAKE_FRAME_BYTES_MAX)]);
      });
    });
  }

  /** A dialer completed TLS with us; it has `handshakeTimeoutMs` to introduce itself. */
  #onInbound(socket: TLSSocket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const timer = this.#env.setTimer(this.#settings.handshakeTimeoutMs, () =>
      conn.close(new TransportError("ERR_HANDSHAKE_TIMEOUT", "dialer sent no hello in time")),
    );
    let decided = false;
    const conn = new FrameConnection(socket, HANDSHAKE_FRAME_BYTES_MAX, {
      onFrame: (frame) => {
        decided = true;
        timer.cancel();
        this.#onHello(socket, conn, frame);
      },
      onClose: (error) => {
        timer.cancel();
        if (!decided && error !== undefined)
          this.#emit({ kind: "inbound-refused", claimed: undefined, error });
      },
    });
    this.#track(conn);
  }

  #onHello(socket: TLSSocket, conn: FrameConnection, frame: Frame): void {
    const refuse = (welcome: Welcome & { accepted: false }, claimed: number | undefined): void => {
      const code = welcome.reason === "not-member" ? "ERR_PEER_UNKNOWN" : "ERR_HANDSHAKE_REJECTED";
      const error = new TransportError(
        code,
        `refused ${claimed === undefined ? "dialer" : `node ${claimed}`}: ${describeWelcome(welcome)}`,
      );
      this.#emit({ kind: "inbound-refused", claimed, error });
      conn.endAfterWrite(
        [encodeFrame(FrameType.welcome, 0, encodeWelcome(welcome), HANDSHAKE_FRAME_BYTES_MAX)],
        error,
      );
    };
    let hello: Hello;
    try {
      if (frame.type !== FrameType.hello)
        throw new TransportError("ERR_FRAME_CORRUPT", `expected hello, got ${frame.type}`);
      hello = decodeHello(frame.payload);
    } catch (error) {
      refuse({ accepted: false, reason: "malformed-hello", detail: frameError(error).message }, undefined);
      return;
    }
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      refuse(
        {
          accepted: false,
          reason: "protocol-version",
          detail: `this node speaks protocol ${PROTOCOL_VERSION}, dialer speaks ${hello.protocolVersion}`,
        },
        undefined,
      );
      return;
    }
    if (hello.clusterId !== this.#options.clusterId) {
      refuse(
        {
          accepted: false,
          reason: "cluster-mismatch",
          detail: `this node belongs to cluster "${this.#options.clusterId}", dialer to "${hello.clusterId}"`,
        },
        hello.nodeId,
      );
      return;
    }
    if (hello.nodeId < 1) {
      refuse({ accepted: false, reason: "malformed-hello", detail: "node id 0 is not a node" }, hello.nodeId);
      return;
    }
    const claimed = hello.nodeId as NodeId;
    // The claim must be backed by the certificate the CA signed, or any member could pose as another.
    const names = certificateNames(socket.getPeerCertificate());
    const expected = this.#identityOf(claimed);
    if (!names.includes(expected)) {
      refuse(
        {
          accepted: false,
          reason: "identity-mismatch",
          detail: `dialer claims node ${claimed} but its certificate names ${names.join(", ") || "nothing"}, not ${expected}`,
        },
        claimed,
      );
      return;
    }
    if (!this.#isMember(claimed)) {
      refuse(
        { accepted: false, reason: "not-member", detail: `node ${claimed} is not a member of this cluster` },
        claimed,
      );
      return;
    }
    conn.write([
      encodeFrame(FrameType.welcome, 0, encodeWelcome({ accepted: true }), HANDSHAKE_FRAME_BYTES_MAX),
    ]);
    conn.decoder.frameBytesMax = this.#settings.frameBytesMax;
    this.#emit({ kind: "inbound-accepted", peer: claimed, purpose: hello.purpose });
    if (hello.purpose === "snapshot") {
      this.#snapshots.accept(claimed, conn);
      return;
    }
    // A peer redials after it lost its side; the older connection is dead or dying.
    this.#inbound.get(claimed)?.close();
    // It is up again, so our side need not wait out its backoff either.
    this.#links.get(claimed)?.redialNow();

    this.#inbound.set(claimed, conn);
    conn.setHandlers({
      onFrame: (next) => this.#onMessageFrame(claimed, conn, next),
      onClose: (error) => {
        if (this.#inbound.get(claimed) === conn) this.#inbound.delete(claimed);
        if (error !== undefined && error.code !== "ERR_CONNECTION_LOST") {
          this.#emit({ kind: "inbound-dropped", peer: claimed, error });
        }
      },
    });
  }

  #onMessageFrame(from: NodeId, conn: FrameConnection, frame: Frame): void {
    if (frame.type !== FrameType.message) {
      conn.close(
        new TransportError(
          "ERR_FRAME_CORRUPT",
          `unexpected frame type ${frame.type} on a message connection`,
        ),
      );
      return;
    }
    const decoded = this.#options.codec.decode(frame.payload);
    if (!decoded.ok) {
      conn.close(
        new TransportError("ERR_MESSAGE_DECODE", `undecodable message from node ${from}: ${decoded.error}`),
      );
      return;
    }
    this.#messageHandler?.({ from, group: toGroupId(frame.group), message: decoded.message });
  }
}

/** A failure while reading a peer's frames as the transport's error. */
function frameError(error: unknown): TransportError {
  return asTransportError(error, "ERR_FRAME_CORRUPT");
}

/**
 * Names a failed dial. TLS trouble is ERR_TLS: an OpenSSL error, or a listener that hung up
 * without answering our hello (in TLS 1.3 the server checks our certificate after the client
 * finished its side, and Node closes without an alert we can see). Socket errors stay
 * ERR_CONNECTION_LOST; refusals and timeouts keep their own codes.
 */
function classifyDialError(
  error: TransportError | undefined,
  secured: boolean,
  peer: NodeId,
): TransportError {
  if (error === undefined) return new TransportError("ERR_CONNECTION_LOST", `dial to node ${peer} cancelled`);
  const cause: unknown = error.cause;
  if (cause instanceof TransportError) return cause;
  if (error.code !== "ERR_CONNECTION_LOST") return error;
  // Socket-level failures (refused, reset, unreachable) carry the failing system call.
  const isSystemError = typeof cause === "object" && cause !== null && "syscall" in cause;
  if (cause !== undefined && !isSystemError) {
    return new TransportError("ERR_TLS", `TLS with node ${peer} failed: ${error.message}`, { cause: error });
  }
  if (cause === undefined) {
    return new TransportError(
      "ERR_TLS",
      secured
        ? `node ${peer} hung up before answering hello: it probably refused our certificate`
        : `node ${peer} hung up during the TLS handshake`,
      { cause: error },
    );
  }
  return error;
}
