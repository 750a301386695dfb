// Listening and closing for the protocol adapters that serve plain TCP (Redis, text, gRPC): one
// place that binds, bounds connections per listener and per address (a refused client is told why
// in its own protocol, then closed), reports the port actually bound (port 0 in tests) and, on
// close, ends every open connection so a stopping node does not wait on idle clients.
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { ClientTls } from "./client-tls.js";
import {
  type ClientProtocol,
  ConnectionGate,
  type ConnectionLimits,
  type ConnectionRefusal,
  type ConnectionRefusals,
  gateBeforeHandshake,
} from "./connection-gate.js";

/** A listening TCP server: where it listens and how to stop it. */
export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** The connection bounds and what they refused. */
  readonly gate: ConnectionGate;
  /** Stops accepting, destroys every open connection and resolves once the server closed. */
  close(): Promise<void>;
}

/** What a TCP listener serves and how. */
export interface TcpServeOptions {
  readonly listen: { readonly host: string; readonly port: number };
  /** Serves one admitted connection. */
  readonly serve: (socket: Socket) => void;
  readonly limits?: Partial<ConnectionLimits>;
  /**
   * The bytes that tell a refused client why, in its protocol (absent: it is closed without a
   * word, as a protocol that cannot speak first must be).
   */
  readonly refusal?: (refusal: ConnectionRefusal, limits: ConnectionLimits) => string;
  /** Serve over TLS with this node's certificate (the refusal then travels over TLS too). */
  readonly tls?: ClientTls;
  /** ALPN protocols offered over TLS (gRPC: `h2`). */
  readonly alpnProtocols?: readonly string[];
  /** The protocol served, and the node's refusal counts to count this port's into (for /metrics). */
  readonly refusals?: { readonly protocol: ClientProtocol; readonly counts: ConnectionRefusals };
}

/** Starts serving on `options.listen`; rejects with the bind error (EADDRINUSE...) when it cannot. */
export async function listenTcp(options: TcpServeOptions): Promise<TcpListener> {
  const gate = new ConnectionGate(options.limits, options.refusals?.counts.of(options.refusals.protocol));
  const sockets = new Set<Socket>();
  const admit = (socket: Socket) => {
    // Over TLS the raw socket was counted at accept (below); this is its finished handshake.
    const refused = options.tls === undefined ? gate.admit(socket) : undefined;
    if (refused !== undefined) {
      socket.on("error", () => undefined);
      const reply = options.refusal?.(refused, gate.limits);
      if (reply === undefined) socket.destroy();
      else socket.end(reply);
      // Whatever the client sends meanwhile is dropped, never parsed.
      socket.resume();
      return;
    }
    options.serve(socket);
  };
  const tls = options.tls;
  let server: Server;
  if (tls === undefined) server = createServer({ noDelay: true }, admit);
  else {
    const secure = createTlsServer(
      {
        ...tls.serverOptions(),
        noDelay: true,
        ...(options.alpnProtocols !== undefined ? { ALPNProtocols: [...options.alpnProtocols] } : {}),
      },
      admit,
    );
    gateBeforeHandshake(secure, gate);
    tls.serve(secure);
    server = secure;
  }
  // Every TCP connection, served or still in its TLS handshake, ends when the listener closes.
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : options.listen.port;
  return {
    host: options.listen.host,
    port,
    gate,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
