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

/** Counts open connections per listener and per address; refuses those over a limit. */
export class ConnectionGate {
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, number>();
  #open = 0;
  /** Connections refused so far, by reason (for metrics and tests). */
  readonly refused: Record<ConnectionRefusal, number> = { "listener-full": 0, "address-full": 0 };

  /** Creates a gate; limits not given take the defaults. */
  constructor(limits: Partial<ConnectionLimits> = {}) {
    this.#limits = { ...defaultConnectionLimits, ...limits };
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
}
