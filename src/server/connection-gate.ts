// The bound on connections every client port shares: at most `connectionsMax` open on a listener
// and `connectionsPerAddressMax` from one remote address, so one client (or one runaway pool)
// cannot take every connection a node serves. Counted on the raw socket, before any byte of it is
// read or a TLS handshake is done.
import type { Socket } from "node:net";
import type { Server as TlsServer } from "node:tls";

/** The connection limits of one listener. */
export interface ConnectionLimits {
  /** Connections open on the listener at most. */
  readonly connectionsMax: number;
  /** Connections open from one remote address (IP) at most. */
  readonly connectionsPerAddressMax: number;
}

/** Defaults: 1,024 connections a listener, 256 of them from one address. */
export const defaultConnectionLimits: ConnectionLimits = {
  // A bound, not a quota: one application host with a few hundred pooled connections (a benchmark's
  // 256 clients and its warm-up pool) must fit from one address, as Redis (maxclients 10,000, no
  // per-address limit) and etcd (none) would serve it.
  connectionsMax: 4096,
  connectionsPerAddressMax: 1024,
};

/** Why a connection was refused: the listener is full, or the client's address is. */
export type ConnectionRefusal = "listener-full" | "address-full";

/**
 * Every reason a client port ends a connection before serving it: a limit, or a TLS handshake
 * that failed (a plain-text client on a TLS port, no or an unknown client certificate).
 */
export const refusalReasons = ["listener-full", "address-full", "tls-handshake"] as const;
/** One of {@link refusalReasons}. */
export type RefusalReason = (typeof refusalReasons)[number];

/** The client protocols, as /metrics labels them. */
export type ClientProtocol = "http" | "redis" | "text" | "grpc";

/**
 * Connections refused on a node's client ports, by protocol and reason, for /metrics
 * (`cairn_connections_refused_total`). Each port's gate counts into it.
 */
export class ConnectionRefusals {
  readonly #counts = new Map<ClientProtocol, Record<RefusalReason, number>>();

  /** The counts of `protocol`'s port, every reason starting at 0 (so each series exists from the start). */
  of(protocol: ClientProtocol): Record<RefusalReason, number> {
    let counts = this.#counts.get(protocol);
    if (counts === undefined) {
      counts = { "listener-full": 0, "address-full": 0, "tls-handshake": 0 };
      this.#counts.set(protocol, counts);
    }
    return counts;
  }

  /** Every protocol served and its counts. */
  entries(): IterableIterator<[ClientProtocol, Readonly<Record<RefusalReason, number>>]> {
    return this.#counts.entries();
  }
}

/** Counts open connections per listener and per address; refuses those over a limit. */
export class ConnectionGate {
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, number>();
  #open = 0;
  /**
   * Connections refused so far, by reason (for metrics and tests): the node's counts of this
   * port's protocol when given, else the gate's own.
   */
  readonly refused: Record<RefusalReason, number>;

  /** Creates a gate; limits not given take the defaults. */
  constructor(limits: Partial<ConnectionLimits> = {}, refused?: Record<RefusalReason, number>) {
    this.#limits = { ...defaultConnectionLimits, ...limits };
    this.refused = refused ?? { "listener-full": 0, "address-full": 0, "tls-handshake": 0 };
  }

  /**
   * Counts a TLS handshake that failed on this port: its connection was never served. Wired to the
   * TLS server's `tlsClientError`.
   */
  handshakeFailed(): void {
    this.refused["tls-handshake"]++;
  }

  /** The limits in force. */
  get limits(): ConnectionLimits {
    return this.#limits;
  }

  /**
   * Admits `socket` and counts it until it closes, or says why it may not be served (then it is
   * not counted; the caller tells the client and closes it).
   */
  admit(socket: Socket): ConnectionRefusal | undefined {
    const address = socket.remoteAddress ?? "?";
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (this.#open >= this.#limits.connectionsMax) {
      this.refused["listener-full"]++;
      return "listener-full";
    }
    if (fromAddress >= this.#limits.connectionsPerAddressMax) {
      this.refused["address-full"]++;
      return "address-full";
    }
    this.#open++;
    this.#perAddress.set(address, fromAddress + 1);
    socket.once("close", () => {
      this.#open--;
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
    return undefined;
  }
}

/** The refusal as a sentence for a client's error line. */
export function refusalText(refusal: ConnectionRefusal, limits: ConnectionLimits): string {
  return refusal === "listener-full"
    ? `too many connections to this port (${limits.connectionsMax}); retry later or use another node`
    : `too many connections from your address (${limits.connectionsPerAddressMax}); close some first`;
}

/**
 * Counts every TCP connection of a TLS server at accept, before its handshake: a handshake costs
 * the server CPU (key exchange, certificate signature), so a flood of them must meet the bound
 * before any is done. One over a limit is closed at once without an answer: a refusal that the
 * client could read would need the very handshake the bound is there to spare.
 */
export function gateBeforeHandshake(server: TlsServer, gate: ConnectionGate): void {
  // Before the TLS server's own listener, which starts the handshake.
  server.prependListener("connection", (socket: Socket) => {
    if (gate.admit(socket) === undefined) return;
    socket.on("error", () => undefined);
    socket.destroy();
  });
  // A failed handshake (a plain-text client, no or an unknown client certificate) only ends that
  // connection; it is counted. A connection that went away before its handshake (ECONNRESET: the
  // client left, a TCP probe, or the gate above closed it, counted already) failed nothing.
  server.on("tlsClientError", (error: Error & { code?: string }) => {
    if (error.code !== "ECONNRESET") gate.handshakeFailed();
  });
}
